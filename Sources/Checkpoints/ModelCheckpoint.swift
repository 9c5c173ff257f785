import Engine
import Foundation
import NN

/// Saving and loading a module's state dict as safetensors, with metadata (architecture, classes,
/// data set, epoch, accuracy, command line) and a check that a checkpoint fits the architecture.
public enum ModelCheckpoint {
    public static func save(_ module: Module, metadata: [String: String], to url: URL) throws {
        try SafeTensors.write(module.stateDict, metadata: metadata, to: url)
    }

    /// Loads into `module`; a checkpoint of another architecture names the first key that differs
    /// and both shapes. Returns the metadata.
    @discardableResult
    public static func load(_ url: URL, into module: Module) throws -> [String: String] {
        let contents = try SafeTensors.read(url)
        try load(contents.tensors, into: module, path: url.path)
        return contents.metadata
    }

    /// Loads a state dict read from `path` into `module`, or names the first key that does not fit.
    public static func load(_ state: [String: Tensor], into module: Module, path: String) throws {
        do { try module.validate(state) } catch let error as StateDictError {
            throw CheckpointError.architectureMismatch(path: path, reason: error.description)
        }
        module.load(state)
    }
}
