import ArgumentParser
import Checkpoints
import Datasets
import Engine
import Foundation
import Models
import NN
import ONNXExport

/// `mmkd export`: a trained network (a checkpoint, or the student of a run directory) as an ONNX
/// model, checked against the network's own forward before it is written.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a checkpoint (or a run's student) to ONNX: opset 13, free batch dimension, checked against mmkd's forward.",
        discussion: """
            SOURCE is a .safetensors or PyTorch .pth checkpoint, or a run directory of `mmkd train` or \
            `mmkd distill` (its best.safetensors: the student alone, without regressors or meta networks). \
            The architecture, class count and class names come from the checkpoint's metadata when it has them.
            """)

    @Argument(help: "Checkpoint file or run directory.") var source: String
    @Option(help: "Architecture (default: the checkpoint's).") var arch: String?
    @Option(parsing: .unconditional, help: "Classes of the classifier (default: the checkpoint's).") var classes: Int?
    @Option(help: "Output format (onnx).") var format: String = "onnx"
    @Option(help: "The .onnx file to write.") var out: String
    @Flag(help: "Keep BatchNormalization nodes instead of folding each into the convolution before it.") var keepBatchNorm = false
    @Flag(help: "Bake the data set's input normalisation into the graph: it then takes RGB values in [0, 1].") var normalize = false
    @Option(help: "Data set kind whose normalisation --normalize bakes in (default: the checkpoint's), e.g. cifar100, folder, stanford-dogs.")
    var data: String?
    @Option(help: "Class names, comma-separated, in logit order (default: the checkpoint's).") var classNames: String?
    @Option(parsing: .unconditional, help: "Input height and width (default: 224 for the ImageNet architectures, else 32).") var imageSize: Int?

    func validate() throws {
        guard format == "onnx" else { throw ValidationError("--format: '\(format)' is not a format this build writes; expected onnx") }
        if let arch, !ModelZoo.allNames.contains(arch) {
            throw ValidationError("--arch: unknown architecture '\(arch)'; known: \(ModelZoo.allNames.joined(separator: ", "))")
        }
        if let classes, classes <= 0 { throw ValidationError("--classes must be positive, got \(classes)") }
        if let imageSize, imageSize <= 0 || imageSize > 4096 { throw ValidationError("--image-size must be in 1…4096, got \(imageSize)") }
        if let data { _ = try ExportCommand.kind(data, option: "--data") }
    }

    /// What stops an export after its flags were accepted (printed without the usage text).
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The data set kind of `text` (KIND or KIND:PATH).
    static func kind(_ text: String, option: String) throws -> DatasetSpec.Kind {
        let name = String(text.split(separator: ":", maxSplits: 1).first ?? "")
        guard let kind = DatasetSpec.Kind(rawValue: name) else {
            throw Failure("\(option): '\(text)' names no data set kind; expected one of \(DatasetSpec.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return kind
    }

    func run() throws {
        let checkpoint = try Self.checkpointFile(source)
        let (tensors, metadata) = try ModelCheckpoint.read(checkpoint)
        guard let arch = arch ?? metadata["arch"] else {
            throw Failure("\(checkpoint.path) does not say its architecture; pass --arch")
        }
        guard ModelZoo.allNames.contains(arch) else {
            throw Failure("\(checkpoint.path): architecture '\(arch)' is not in the zoo; pass --arch")
        }
        let classCount = try classes ?? metadata["classes"].flatMap(Int.init) ?? Self.classCount(of: arch, in: tensors, path: checkpoint.path)
        let model = try ModelZoo.make(arch, classes: classCount)
        try ModelCheckpoint.load(tensors, into: model, path: checkpoint.path)

        var options = ONNXExportOptions()
        options.foldBatchNorm = !keepBatchNorm
        options.graphName = arch
        let names = classNames.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            ?? metadata["class_names"].map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
        if !names.isEmpty {
            guard names.count == classCount else {
                throw Failure("\(classNames != nil ? "--class-names" : checkpoint.path + ": class_names") gives \(names.count) names for \(classCount) classes")
            }
            options.classNames = names
        }
        var normalizedBy: String?
        if normalize {
            guard let dataText = data ?? metadata["data"] else {
                throw Failure("--normalize: \(checkpoint.path) does not say its data set; pass --data KIND")
            }
            let kind = try Self.kind(dataText, option: data != nil ? "--data" : "the checkpoint's data")
            let pipeline = try DatasetSpec(parsing: "\(kind.rawValue):-").pipeline(train: false)
            options.normalization = (mean: pipeline.mean, std: pipeline.std)
            options.metadata["normalization"] = "\(kind.rawValue): mean \(pipeline.mean), std \(pipeline.std)"
            normalizedBy = kind.rawValue
        }
        for key in ["data", "epoch", "top1", "method"] { if let value = metadata[key] { options.metadata["mmkd." + key] = value } }
        options.metadata["mmkd.source"] = checkpoint.lastPathComponent

        let size = imageSize ?? (ModelZoo.imageNetNames.contains(arch) ? 224 : 32)
        let export = try ONNXExporter.export(model, imageShape: [3, size, size], options: options) { model($0) }
        // The check: the graph, evaluated node by node, against the network's forward on another batch size.
        var generator = RandomGenerator(seed: 0xC4EC)
        let batch = Tensor.randomUniform([3, 3, size, size], generator: &generator)
        let normalise: (Tensor) -> Tensor = { x in
            guard let n = options.normalization else { return x }
            return (x - Tensor(n.mean, shape: [1, 3, 1, 1])) / Tensor(n.std, shape: [1, 3, 1, 1])
        }
        let difference = try ONNXExporter.relativeDifference(export, input: batch) { model(normalise($0)) }
        guard difference <= 1e-4 else {
            throw ONNXExportError.verificationFailed(String(format: "logits differ by %.3g relative to the largest on a batch of 3", difference))
        }
        try AtomicFile.write(try export.serializedData(), to: URL(fileURLWithPath: out))

        let ops = export.operatorCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        print("\(out): \(arch), \(classCount) classes, \(export.parameterCount) parameters, opset \(export.opset), input [batch, 3, \(size), \(size)]")
        print("  \(export.nodeCount) nodes: \(ops.joined(separator: ", "))")
        print("  batch norm \(keepBatchNorm ? "kept" : "folded into the convolutions"); input \(normalizedBy.map { "RGB in [0, 1], normalised by the graph (\($0))" } ?? "normalised by the caller, as in training")"
              + (options.classNames.isEmpty ? "" : "; \(options.classNames.count) class names in the metadata"))
        print(String(format: "  checked: on a batch of 3 the graph's logits are within %.2g (relative) of mmkd's forward", difference))
    }

    /// The checkpoint `source` names: the file itself, or a run directory's best (else last) checkpoint.
    static func checkpointFile(_ source: String) throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else { throw CheckpointError.missing(path: source) }
        guard isDirectory.boolValue else { return URL(fileURLWithPath: source) }
        for name in ["best.safetensors", "last.safetensors"] where FileManager.default.fileExists(atPath: source + "/" + name) {
            return URL(fileURLWithPath: source).appendingPathComponent(name)
        }
        throw CheckpointError.corrupt(path: source, reason: "is a folder without best.safetensors or last.safetensors (not a run directory)")
    }

    /// The class count of a checkpoint without metadata: the rows of the classifier, found as the
    /// state-dict entry whose shape follows the class count.
    static func classCount(of arch: String, in tensors: [String: Tensor], path: String) throws -> Int {
        let one = Dictionary(uniqueKeysWithValues: try ModelZoo.make(arch, classes: 1).stateDict.map { ($0.0, $0.1.shape) })
        let two = try ModelZoo.make(arch, classes: 2).stateDict
        guard let key = two.first(where: { one[$0.0] != $0.1.shape && $0.1.rank == 2 })?.0, let weight = tensors[key] else {
            throw Failure("\(path): no classifier weight found to read the class count from; pass --classes")
        }
        return weight.shape[0]
    }
}
