import Engine
import Foundation
import Serialization

/// Reads PyTorch checkpoints written by `torch.save` (the ZIP format of PyTorch ≥ 1.6): a bare
/// state dict, or a dictionary holding one under `model` or `state_dict` (as RepDistiller and
/// CA-MKD teachers are saved). Tensors of any storage type become Float32; `module.` prefixes of
/// DataParallel models are removed. Nothing in the file is executed.
public enum TorchCheckpoint {
    public struct Contents {
        /// State-dict entries in file order.
        public var tensors: [(String, Tensor)]
        /// Scalar entries beside the state dict (e.g. `epoch`, `best_acc`), as text.
        public var extras: [String: String]
    }

    /// The most values a tensor may have beyond those of its storage (a view with zero strides).
    static let maximumBroadcastValues = 1 << 24

    public static func read(_ url: URL) throws -> Contents {
        let path = url.path
        guard let data = FileManager.default.contents(atPath: path) else { throw CheckpointError.missing(path: path) }
        do { return try parse(data, path: path) } catch let e as SerializationError {
            switch e {
            case let .corrupt(p, r): throw CheckpointError.corrupt(path: p, reason: r)
            case let .unsupported(p, r): throw CheckpointError.unsupported(path: p, reason: r)
            }
        }
    }

    package static func parse(_ data: Data, path: String) throws -> Contents {
        let zip = try ZipArchive([UInt8](data), path: path)
        guard let pickleName = zip.entries.keys.first(where: { $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }) else {
            throw CheckpointError.unsupported(path: path, reason: "no data.pkl inside; only the ZIP format of torch.save (PyTorch ≥ 1.6) is read")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        var unpickler = Unpickler(try zip.read(pickleName), path: path)
        let root = try unpickler.load()
        guard let entries = root.stringKeyedEntries else { throw CheckpointError.unsupported(path: path, reason: "the top level is \(root), not a dictionary") }
        var stateEntries = entries
        var extras: [String: String] = [:]
        if let nested = entries.first(where: { ["model", "state_dict", "model_state_dict"].contains($0.0) && $0.1.stringKeyedEntries != nil }) {
            stateEntries = nested.1.stringKeyedEntries!
            for (k, v) in entries where k != nested.0 {
                switch v { case .int, .float, .string, .bool: extras[k] = "\(v)".trimmingCharacters(in: CharacterSet(charactersIn: "'")); default: break }
            }
        }
        var storages: [String: [UInt8]] = [:]
        var tensors: [(String, Tensor)] = []
        for (name, value) in stateEntries {
            let key = name.hasPrefix("module.") ? String(name.dropFirst(7)) : name
            tensors.append((key, try tensor(value, name: key, zip: zip, prefix: prefix, storages: &storages)))
        }
        return Contents(tensors: tensors, extras: extras)
    }

    static func tensor(_ value: PickleValue, name: String, zip archive: ZipArchive, prefix: String, storages: inout [String: [UInt8]]) throws -> Tensor {
        let path = archive.path
        guard case let .object(callable, args, _) = value,
              callable.isGlobal("torch._utils", "_rebuild_tensor_v2") || callable.isGlobal("torch._utils", "_rebuild_tensor"),
              args.count >= 4, case .persistent(.tuple(let storage)) = args[0], case .int(let offset) = args[1],
              case .tuple(let sizeValues) = args[2], case .tuple(let strideValues) = args[3] else {
            throw CheckpointError.unsupported(path: path, reason: "entry '\(name)' is \(value), not a tensor")
        }
        guard storage.count >= 3, case .global(_, let typeName) = storage[1], case .string(let key) = storage[2],
              let scalar = StoredScalar(torchStorage: typeName) else {
            throw CheckpointError.unsupported(path: path, reason: "entry '\(name)' has storage \(storage)")
        }
        let shape = sizeValues.compactMap { if case .int(let v) = $0 { return v }; return nil }
        let strides = strideValues.compactMap { if case .int(let v) = $0 { return v }; return nil }
        guard shape.count == sizeValues.count, strides.count == shape.count else { throw CheckpointError.corrupt(path: path, reason: "entry '\(name)' has a malformed size or stride") }
        if storages[key] == nil { storages[key] = try archive.read(prefix + "data/" + key) }
        let bytes = storages[key]!
        guard offset >= 0, strides.allSatisfy({ $0 >= 0 }), let count = CheckedCount.product(shape), count <= 1 << 31 else {
            throw CheckpointError.corrupt(path: path, reason: "entry '\(name)' has size \(shape), stride \(strides) and offset \(offset), expected sizes, strides and offset ≥ 0 and at most 2³¹ values")
        }
        // A view may repeat storage values (stride 0), but not blow a small file up without bound.
        guard count <= max(bytes.count / scalar.width, maximumBroadcastValues) else {
            throw CheckpointError.corrupt(path: path, reason: "entry '\(name)' has \(count) values (size \(shape)) but its storage holds \(bytes.count / scalar.width), and views are read only up to \(maximumBroadcastValues) values")
        }
        // The furthest element read, offset + Σ (size − 1)·stride, and its end in bytes, all checked.
        var furthest: Int? = offset
        for (size, stride) in zip(shape, strides) where size > 0 {
            furthest = furthest.flatMap { f in CheckedCount.product(size - 1, stride).flatMap { CheckedCount.sum(f, $0) } }
        }
        guard count == 0 || furthest.flatMap({ CheckedCount.sum($0, 1) }).flatMap({ CheckedCount.product($0, scalar.width) }).map({ $0 <= bytes.count }) == true else {
            throw CheckpointError.corrupt(path: path, reason: "entry '\(name)' (size \(shape), stride \(strides), offset \(offset)) reaches past its storage of \(bytes.count / scalar.width) values")
        }
        return Tensor.make(shape) { p, n in
            bytes.withUnsafeBytes { raw in
                var index = [Int](repeating: 0, count: shape.count)
                for i in 0..<n {
                    var element = offset
                    for d in 0..<shape.count { element += index[d] * strides[d] }
                    p[i] = scalar.decode(raw, element)
                    var d = shape.count - 1
                    while d >= 0 { index[d] += 1; if index[d] < shape[d] { break }; index[d] = 0; d -= 1 }
                }
            }
        }
    }
}
