import Foundation

/// A minimal ZIP reader (central directory, stored and deflated entries), enough for PyTorch's
/// `torch.save` archives.
public struct ZipArchive {
    public let path: String
    let data: [UInt8]
    /// Entry name → (offset of its local header, compressed size, uncompressed size, method).
    public private(set) var entries: [String: (offset: Int, compressed: Int, size: Int, method: Int)] = [:]

    public init(_ data: [UInt8], path: String) throws {
        self.data = data
        self.path = path
        // The end-of-central-directory record sits in the last 64 KiB + 22 bytes.
        let lowest = max(0, data.count - 65_557)
        guard data.count >= 22, let eocd = stride(from: data.count - 22, through: lowest, by: -1).first(where: { u32($0) == 0x0605_4B50 }) else {
            throw SerializationError.corrupt(path: path, reason: "not a ZIP archive (no end-of-central-directory record)")
        }
        let count = u16(eocd + 10)
        var p = u32(eocd + 16)
        for _ in 0..<count {
            guard p + 46 <= data.count, u32(p) == 0x0201_4B50 else { throw SerializationError.corrupt(path: path, reason: "ZIP central directory is damaged") }
            let method = u16(p + 10), compressed = u32(p + 20), size = u32(p + 24)
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            let offset = u32(p + 42)
            guard p + 46 + nameLength <= data.count else {
                throw SerializationError.corrupt(path: path, reason: "ZIP central directory entry at byte \(p) has a name of \(nameLength) bytes running past the end of the file (\(data.count) bytes)")
            }
            let name = String(decoding: data[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            entries[name] = (offset, compressed, size, method)
            p += 46 + nameLength + extraLength + commentLength
        }
    }

    func u16(_ at: Int) -> Int { Int(data[at]) | Int(data[at + 1]) << 8 }
    func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }

    /// The bytes of an entry.
    public func read(_ name: String) throws -> [UInt8] {
        guard let e = entries[name] else { throw SerializationError.corrupt(path: path, reason: "ZIP archive has no entry '\(name)'") }
        guard e.offset + 30 <= data.count, u32(e.offset) == 0x0403_4B50 else { throw SerializationError.corrupt(path: path, reason: "entry '\(name)' has no local header") }
        let start = e.offset + 30 + u16(e.offset + 26) + u16(e.offset + 28)
        guard start + e.compressed <= data.count else { throw SerializationError.corrupt(path: path, reason: "entry '\(name)' is truncated") }
        let raw = Array(data[start..<(start + e.compressed)])
        switch e.method {
        case 0: return raw
        case 8:
            let inflated = try Inflate.inflate(raw, framing: .raw, path: "\(path) (entry '\(name)')", sizeHint: e.size, limit: e.size)
            guard inflated.count == e.size else {
                throw SerializationError.corrupt(path: path, reason: "entry '\(name)' inflates to \(inflated.count) bytes, its header says \(e.size)")
            }
            return inflated
        default: throw SerializationError.unsupported(path: path, reason: "entry '\(name)' uses ZIP compression method \(e.method)")
        }
    }
}
