/// A decoded 8-bit image, interleaved (height × width × channels), channels 1 (grey) or 3 (RGB).
public struct Image: Sendable, Equatable {
    public var width: Int, height: Int, channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels,
                     "Image: \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }

    /// The crop `(cropX, cropY, cropWidth, cropHeight)` resized bilinearly to `width` × `height`
    /// (pixel centres aligned, as PIL's and torchvision's bilinear resize without antialiasing).
    public func resized(cropX: Int, cropY: Int, cropWidth: Int, cropHeight: Int, width outW: Int, height outH: Int) -> Image {
        if cropX == 0 && cropY == 0 && cropWidth == width && cropHeight == height && outW == width && outH == height { return self }
        var out = [UInt8](repeating: 0, count: outW * outH * channels)
        let sx = Double(cropWidth) / Double(outW), sy = Double(cropHeight) / Double(outH)
        for y in 0..<outH {
            let fy = min(max((Double(y) + 0.5) * sy - 0.5, 0), Double(cropHeight - 1))
            let y0 = Int(fy), y1 = min(y0 + 1, cropHeight - 1), wy = fy - Double(y0)
            for x in 0..<outW {
                let fx = min(max((Double(x) + 0.5) * sx - 0.5, 0), Double(cropWidth - 1))
                let x0 = Int(fx), x1 = min(x0 + 1, cropWidth - 1), wx = fx - Double(x0)
                for c in 0..<channels {
                    func at(_ xx: Int, _ yy: Int) -> Double { Double(pixels[((cropY + yy) * width + cropX + xx) * channels + c]) }
                    let v = (at(x0, y0) * (1 - wx) + at(x1, y0) * wx) * (1 - wy) + (at(x0, y1) * (1 - wx) + at(x1, y1) * wx) * wy
                    out[(y * outW + x) * channels + c] = UInt8(min(max(v.rounded(), 0), 255))
                }
            }
        }
        return Image(width: outW, height: outH, channels: channels, pixels: out)
    }

    /// The same image with three channels (grey replicated).
    public func rgb() -> Image {
        if channels == 3 { return self }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { let v = pixels[i * channels]; out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v }
        return Image(width: width, height: height, channels: 3, pixels: out)
    }
}
