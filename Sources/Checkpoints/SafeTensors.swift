import Engine
import Foundation
import Serialization

/// The safetensors format (an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then the raw little-endian data), with PyTorch's state-dict names.
/// Tensors are written as F32, except `num_batches_tracked` counters, which PyTorch keeps as I64.
public enum SafeTensors {
    /// Writes tensors in the given order with string metadata, atomically.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to url: URL) throws {
        try AtomicFile.write(try encoded(tensors, metadata: metadata), to: url)
    }

    /// The bytes of a safetensors file holding `tensors` in the given order and `metadata`.
    package static func encoded(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        var blobs: [(Int, [UInt8])] = []
        for (name, t) in tensors {
            let isCounter = name.hasSuffix("num_batches_tracked")
            let bytes: [UInt8]
            if isCounter {
                var values = t.scalars.map { Int64($0).littleEndian }
                bytes = values.withUnsafeMutableBytes { Array($0) }
            } else {
                bytes = t.scalars.withUnsafeBytes { Array($0) }
            }
            header[name] = ["dtype": isCounter ? "I64" : "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes.count]]
            blobs.append((offset, bytes))
            offset += bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, bytes) in blobs { out.append(contentsOf: bytes) }
        return out
    }

    /// A read file: tensors by name, their order in the file (by data offset), and the metadata.
    public struct Contents {
        public var tensors: [String: Tensor]
        public var order: [String]
        public var metadata: [String: String]
    }

    public static func read(_ url: URL) throws -> Contents {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else { throw CheckpointError.missing(path: path) }
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            let code = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError).map { Int32($0.code) }
            throw CheckpointError.corrupt(path: path, reason: "cannot be read (\(code.map(AtomicFile.reason) ?? "a folder, or an input/output error"))")
        }
        return try read(data, path: path)
    }

    /// The tensors of a safetensors file's bytes; `path` names the file in errors.
    package static func read(_ data: Data, path: String) throws -> Contents {
        guard data.count >= 8 else { throw CheckpointError.corrupt(path: path, reason: "\(data.count) bytes, shorter than the 8-byte header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw CheckpointError.corrupt(path: path, reason: "header length \(headerLength) exceeds the file (\(data.count) bytes)")
        }
        let headerData = data.subdata(in: 8..<(8 + Int(headerLength)))
        guard let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw CheckpointError.corrupt(path: path, reason: "the header is not a JSON object")
        }
        let base = 8 + Int(headerLength)
        var tensors: [String: Tensor] = [:], offsets: [(String, Int)] = []
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" { metadata = value as? [String: String] ?? [:]; continue }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let rawShape = entry["shape"] as? [NSNumber], let rawRange = entry["data_offsets"] as? [NSNumber] else {
                throw CheckpointError.corrupt(path: path, reason: "entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let scalar = StoredScalar(safetensors: dtype) else {
                throw CheckpointError.unsupported(path: path, reason: "tensor '\(name)' has dtype \(dtype)")
            }
            let shape = rawShape.compactMap(CheckedCount.integer), range = rawRange.compactMap(CheckedCount.integer)
            guard shape.count == rawShape.count, let count = CheckedCount.product(shape), let byteCount = CheckedCount.product(count, scalar.width) else {
                throw CheckpointError.corrupt(path: path, reason: "tensor '\(name)' has shape \(rawShape), expected sizes ≥ 0 whose product fits in memory")
            }
            guard range.count == 2, rawRange.count == 2, range[0] >= 0, range[1] >= range[0], range[1] <= data.count - base,
                  range[1] - range[0] == byteCount else {
                throw CheckpointError.corrupt(path: path, reason: "tensor '\(name)' (\(dtype) \(shape)) has data_offsets \(rawRange), expected [begin, begin + \(byteCount)] within the \(data.count - base) bytes after the header")
            }
            let bytes = data.subdata(in: (base + range[0])..<(base + range[1]))
            let t = Tensor.make(shape) { p, n in
                bytes.withUnsafeBytes { raw in
                    for i in 0..<n { p[i] = scalar.decode(raw, i) }
                }
            }
            tensors[name] = t
            offsets.append((name, range[0]))
        }
        return Contents(tensors: tensors, order: offsets.sorted { $0.1 < $1.1 }.map(\.0), metadata: metadata)
    }
}
