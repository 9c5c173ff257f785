import CImageCodecs
import Foundation
import Serialization

/// Decoding of JPEG (libjpeg-turbo), PNG (libpng) and gzip (zlib) data.
public enum ImageCodecs {
    /// Decodes a JPEG or PNG file's bytes (recognised by their signature) to RGB or grey.
    public static func decode(_ bytes: [UInt8], path: String) throws -> Image {
        if bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF { return try decodeJPEG(bytes, path: path) }
        if bytes.count >= 8 && bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return try decodePNG(bytes, path: path) }
        throw DataError.unsupported(path: path, reason: "not a JPEG or PNG file (first bytes \(bytes.prefix(4).map { String(format: "%02x", $0) }.joined()))")
    }

    static func decodeJPEG(_ bytes: [UInt8], path: String) throws -> Image {
        guard let handle = tjInitDecompress() else { throw DataError.corrupt(path: path, reason: "cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        var input = bytes
        let headerStatus = input.withUnsafeMutableBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt(bytes.count), &width, &height, &subsampling, &colorspace)
        }
        guard headerStatus == 0, width > 0, height > 0 else {
            throw DataError.corrupt(path: path, reason: "JPEG header: \(String(cString: tjGetErrorStr2(handle)))")
        }
        try checkSize(Int(width), Int(height), path: path)
        let grey = colorspace == Int32(TJCS_GRAY.rawValue)
        let channels = grey ? 1 : 3
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * channels)
        let status = input.withUnsafeMutableBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src.baseAddress, UInt(bytes.count), dst.baseAddress, width, 0, height,
                              grey ? Int32(TJPF_GRAY.rawValue) : Int32(TJPF_RGB.rawValue), 0)
            }
        }
        guard status == 0 else { throw DataError.corrupt(path: path, reason: "JPEG data: \(String(cString: tjGetErrorStr2(handle)))") }
        return Image(width: Int(width), height: Int(height), channels: channels, pixels: pixels)
    }

    static func decodePNG(_ bytes: [UInt8], path: String) throws -> Image {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let begun = bytes.withUnsafeBufferPointer { png_image_begin_read_from_memory(&image, $0.baseAddress, bytes.count) }
        guard begun != 0 else { throw DataError.corrupt(path: path, reason: "PNG header: \(pngMessage(&image))") }
        defer { png_image_free(&image) }
        try checkSize(Int(image.width), Int(image.height), path: path)
        let grey = image.format & UInt32(PNG_FORMAT_FLAG_COLOR) == 0
        image.format = grey ? UInt32(PNG_FORMAT_GRAY) : UInt32(PNG_FORMAT_RGB)
        let channels = grey ? 1 : 3
        var pixels = [UInt8](repeating: 0, count: Int(image.width) * Int(image.height) * channels)
        let finished = pixels.withUnsafeMutableBufferPointer { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard finished != 0 else { throw DataError.corrupt(path: path, reason: "PNG data: \(pngMessage(&image))") }
        return Image(width: Int(image.width), height: Int(image.height), channels: channels, pixels: pixels)
    }

    /// The most pixels a decoded image may have (a header cannot make the decoder allocate more).
    public static let maximumPixels = 1 << 26

    static func checkSize(_ width: Int, _ height: Int, path: String) throws {
        guard width > 0, height > 0, let pixels = CheckedCount.product(width, height), pixels <= maximumPixels else {
            throw DataError.unsupported(path: path, reason: "image of \(width) × \(height) pixels, more than the \(maximumPixels) this reader decodes")
        }
    }

    private static func pngMessage(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Encodes an image as PNG (lossless).
    public static func encodePNG(_ image: Image) throws -> [UInt8] {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width); png.height = UInt32(image.height)
        png.format = image.channels == 1 ? UInt32(PNG_FORMAT_GRAY) : UInt32(PNG_FORMAT_RGB)
        var size = 0
        let probe = image.pixels.withUnsafeBufferPointer { png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, 0, nil) }
        guard probe != 0 else { throw DataError.corrupt(path: "<png encoder>", reason: pngMessage(&png)) }
        var out = [UInt8](repeating: 0, count: size)
        let written = out.withUnsafeMutableBufferPointer { dst in
            image.pixels.withUnsafeBufferPointer { png_image_write_to_memory(&png, dst.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
        }
        guard written != 0 else { throw DataError.corrupt(path: "<png encoder>", reason: pngMessage(&png)) }
        return Array(out.prefix(size))
    }

    /// Encodes an image as baseline JPEG at `quality` (1–100).
    public static func encodeJPEG(_ image: Image, quality: Int = 90) throws -> [UInt8] {
        guard let handle = tjInitCompress() else { throw DataError.corrupt(path: "<jpeg encoder>", reason: "cannot start") }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let grey = image.channels == 1
        let status = image.pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(image.width), 0, Int32(image.height),
                        grey ? Int32(TJPF_GRAY.rawValue) : Int32(TJPF_RGB.rawValue), &buffer, &size,
                        grey ? Int32(TJSAMP_GRAY.rawValue) : Int32(TJSAMP_444.rawValue), Int32(quality), 0)
        }
        defer { tjFree(buffer) }
        guard status == 0, let buffer else { throw DataError.corrupt(path: "<jpeg encoder>", reason: String(cString: tjGetErrorStr2(handle))) }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }

    /// Inflates gzip data (any number of members).
    public static func gunzip(_ bytes: [UInt8], path: String) throws -> [UInt8] {
        do { return try Inflate.inflate(bytes, framing: .gzip, path: path) } catch let e as SerializationError {
            throw DataError(e)
        }
    }
}
