import Engine
import Foundation
import NN

/// Saving and loading a module's state dict as safetensors, with metadata (architecture, classes,
/// data set, epoch, accuracy, command line) and a check that a checkpoint fits the architecture.
public enum ModelCheckpoint {
    public static func save(_ module: Module, metadata: [String: String], to url: URL) throws {
        try SafeTensors.write(module.stateDict, metadata: metadata, to: url)
    }

    /// Loads into `module` from safetensors or a PyTorch `torch.save` file (`.pth`, `.pt`, `.tar`; told
    /// apart by content: a ZIP archive or a pickle is PyTorch's); a checkpoint of another
    /// architecture names the first key that differs and both shapes. Returns the metadata
    /// (safetensors) or the scalar entries beside the state dict (PyTorch).
    @discardableResult
    public static func load(_ url: URL, into module: Module) throws -> [String: String] {
        let (tensors, metadata) = try read(url)
        try load(tensors, into: module, path: url.path)
        return metadata
    }

    /// The state dict and metadata of a safetensors or PyTorch checkpoint (as `load(_:into:)` reads
    /// them), for callers that need the metadata before they can build the module.
    public static func read(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { throw CheckpointError.missing(path: url.path) }
        guard !isDirectory.boolValue else {
            throw CheckpointError.corrupt(path: url.path, reason: "it is a folder; give a checkpoint file in it (best.safetensors, last.safetensors or a .pth)")
        }
        guard FileManager.default.isReadableFile(atPath: url.path) else { throw CheckpointError.corrupt(path: url.path, reason: "cannot be read: permission denied") }
        if isPyTorchFile(url) {
            let contents = try TorchCheckpoint.read(url)
            return (Dictionary(contents.tensors, uniquingKeysWith: { first, _ in first }), contents.extras)
        }
        let contents = try SafeTensors.read(url)
        return (contents.tensors, contents.metadata)
    }

    /// Whether `url` is a `torch.save` file: one of its extensions, or a ZIP archive (what PyTorch ≥
    /// 1.6 writes; a safetensors file starts with its header's length, whose high bytes are zero, so
    /// it never starts with ZIP's signature "PK\u{3}\u{4}").
    static func isPyTorchFile(_ url: URL) -> Bool {
        if ["pth", "pt", "tar"].contains(url.pathExtension.lowercased()) { return true }
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        return [UInt8]((try? handle.read(upToCount: 4)) ?? Data()).starts(with: [0x50, 0x4B, 0x03, 0x04])
    }

    /// Loads a state dict read from `path` into `module`, or names the first key that does not fit.
    public static func load(_ state: [String: Tensor], into module: Module, path: String) throws {
        do { try module.validate(state) } catch let error as StateDictError {
            throw CheckpointError.architectureMismatch(path: path, reason: error.description)
        }
        module.load(state)
    }
}
