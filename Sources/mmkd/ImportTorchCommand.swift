import ArgumentParser
import Checkpoints
import Foundation
import Models
import NN

/// `mmkd import-torch`: converts a PyTorch checkpoint into safetensors for an architecture of the zoo.
struct ImportTorchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-torch",
        abstract: "Convert a PyTorch .pth checkpoint (a state dict, or {'model': state_dict, …}) to safetensors.")

    @Argument(help: "The .pth file (ZIP format of torch.save, PyTorch ≥ 1.6).") var file: String
    @Option(help: "Architecture the weights belong to.") var arch: String
    @Option(help: "Classes of the classifier (default: read from the checkpoint's last linear layer).") var classes: Int?
    @Option(help: "Output file (default: FILE with .safetensors).") var out: String?

    func validate() throws {
        guard ModelZoo.allNames.contains(arch) else {
            throw ValidationError("--arch: unknown architecture '\(arch)'; known: \(ModelZoo.allNames.joined(separator: ", "))")
        }
    }

    func run() throws {
        let input = URL(fileURLWithPath: file)
        let contents = try TorchCheckpoint.read(input)
        guard let inferred = classes ?? contents.tensors.last(where: { $0.0.hasSuffix("weight") && $0.1.rank == 2 })?.1.shape[0] else {
            throw ValidationError("\(file): no linear layer found to infer --classes from; pass --classes")
        }
        let model = try ModelZoo.make(arch, classes: inferred)
        let state = Dictionary(uniqueKeysWithValues: contents.tensors)
        do { try model.validate(state) } catch let e as StateDictError {
            throw CheckpointError.architectureMismatch(path: file, reason: "\(e) (for --arch \(arch) with \(inferred) classes)")
        }
        model.load(state)
        let output = URL(fileURLWithPath: out ?? (input.deletingPathExtension().path + ".safetensors"))
        var metadata = contents.extras
        metadata["arch"] = arch
        metadata["classes"] = "\(inferred)"
        metadata["imported_from"] = input.lastPathComponent
        try ModelCheckpoint.save(model, metadata: metadata, to: output)
        print("\(file) → \(output.path): \(arch), \(inferred) classes, \(model.parameterCount) parameters\(contents.extras.isEmpty ? "" : ", " + contents.extras.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
    }
}
