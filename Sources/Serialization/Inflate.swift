import CImageCodecs

/// zlib decompression of the three framings the project meets: gzip (IDX files), zlib (MAT
/// compressed elements) and raw deflate (ZIP entries).
public enum Inflate {
    public enum Framing: Sendable {
        case gzip, zlib, raw
        var windowBits: Int32 { switch self { case .gzip: return 15 + 16; case .zlib: return 15; case .raw: return -15 } }
    }

    /// Decompresses `input`; for gzip, any number of concatenated members. Throws naming `path` when
    /// the data is damaged or would decompress to more than `limit` bytes.
    public static func inflate(_ input: [UInt8], framing: Framing, path: String, sizeHint: Int = 0, limit: Int = 1 << 32) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, framing.windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw SerializationError.corrupt(path: path, reason: "cannot start zlib")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8]()
        // Deflate expands at most about 1032-fold, so a size hint from a hostile header cannot reserve more.
        output.reserveCapacity(min(max(sizeHint, input.count * 4), input.count * 1032 + 1024))
        var chunk = [UInt8](repeating: 0, count: 1 << 20), source = input
        try source.withUnsafeMutableBufferPointer { src in
            stream.next_in = src.baseAddress
            stream.avail_in = UInt32(src.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { dst -> Int32 in
                    stream.next_out = dst.baseAddress
                    stream.avail_out = UInt32(dst.count)
                    return CImageCodecs.inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                guard produced <= limit - output.count else {
                    throw SerializationError.corrupt(path: path, reason: "compressed data expands past \(limit) bytes")
                }
                output += chunk[0..<produced]
                if status == Z_STREAM_END {
                    if framing != .gzip || stream.avail_in == 0 { return }
                    inflateReset(&stream)  // another gzip member follows
                } else if status != Z_OK {
                    throw SerializationError.corrupt(path: path, reason: "compressed data: \(stream.msg.map { String(cString: $0) } ?? "zlib status \(status)")")
                } else if produced == 0 && stream.avail_in == 0 {
                    throw SerializationError.corrupt(path: path, reason: "compressed data ends early")
                }
            }
        }
        return output
    }
}
