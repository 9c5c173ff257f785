import Engine
import Foundation

/// Turns a decoded image into a normalised CHW float image: optional grey → RGB, centre zero-padding
/// up to a size, random crop after zero padding, random horizontal flip, then per-channel
/// `(x/255 − mean)/std`. Randomness comes from the generator passed in, so a sample's augmentation
/// depends only on its seed.
public struct ImagePipeline: Sendable, Equatable {
    /// Output channels: 3 replicates grey images; 1 keeps them grey.
    public var channels: Int
    /// Smaller images are centre-padded with zeros to at least this size (e.g. 28 → 32).
    public var padToSize: Int?
    /// Random crop back to the image size after zero padding by this many pixels on each side.
    public var randomCropPadding: Int?
    public var horizontalFlip: Bool
    /// torchvision's `RandomResizedCrop(size)`: a random area (8–100%) and aspect ratio (3/4–4/3),
    /// resized bilinearly to size × size (applied first).
    public var randomResizedCrop: Int?
    /// Resize so the shorter side is this long (bilinear), then…
    public var resize: Int?
    /// …take the central crop of this size (torchvision's `Resize` + `CenterCrop`).
    public var centerCrop: Int?
    public var mean: [Float], std: [Float]

    public init(channels: Int = 3, padToSize: Int? = nil, randomCropPadding: Int? = nil, horizontalFlip: Bool = false,
                mean: [Float], std: [Float]) {
        precondition(mean.count == channels && std.count == channels, "ImagePipeline: mean/std need \(channels) entries")
        self.channels = channels; self.padToSize = padToSize; self.randomCropPadding = randomCropPadding
        self.horizontalFlip = horizontalFlip; self.mean = mean; self.std = std
    }

    /// The paper's CIFAR recipe: random crop 32 with 4-pixel zero padding and horizontal flip for
    /// training, normalisation with the CIFAR-100 statistics of DESIGN.md.
    public static func cifar(train: Bool, mean: [Float] = [0.5071, 0.4867, 0.4408], std: [Float] = [0.2675, 0.2565, 0.2761]) -> ImagePipeline {
        ImagePipeline(channels: 3, padToSize: 32, randomCropPadding: train ? 4 : nil, horizontalFlip: train, mean: mean, std: std)
    }

    /// Output height and width for an input of the given size.
    public func outputSize(width: Int, height: Int) -> (width: Int, height: Int) {
        if let s = randomResizedCrop ?? centerCrop { return (max(s, padToSize ?? 0), max(s, padToSize ?? 0)) }
        var (w, h) = (width, height)
        if let r = resize { (w, h) = width <= height ? (r, max(1, height * r / width)) : (max(1, width * r / height), r) }
        return (max(w, padToSize ?? 0), max(h, padToSize ?? 0))
    }

    /// The geometric steps (random-resized crop, or resize + centre crop), on 8-bit pixels.
    func geometry(_ image: Image, generator: inout RandomGenerator) -> Image {
        if let size = randomResizedCrop {
            let area = Double(image.width * image.height)
            for _ in 0..<10 {
                let target = area * (0.08 + 0.92 * Double(generator.nextUniform()))
                let logRatio = Foundation.log(3.0 / 4) + (Foundation.log(4.0 / 3) - Foundation.log(3.0 / 4)) * Double(generator.nextUniform())
                let ratio = Foundation.exp(logRatio)
                let w = Int((target * ratio).squareRoot().rounded()), h = Int((target / ratio).squareRoot().rounded())
                if w > 0 && h > 0 && w <= image.width && h <= image.height {
                    let x = Int(generator.next() % UInt64(image.width - w + 1)), y = Int(generator.next() % UInt64(image.height - h + 1))
                    return image.resized(cropX: x, cropY: y, cropWidth: w, cropHeight: h, width: size, height: size)
                }
            }
            // Fallback as torchvision: the central crop at the nearest allowed ratio.
            let ratio = Double(image.width) / Double(image.height)
            let (w, h) = ratio < 3.0 / 4 ? (image.width, Int((Double(image.width) / (3.0 / 4)).rounded()))
                : ratio > 4.0 / 3 ? (Int((Double(image.height) * 4 / 3).rounded()), image.height) : (image.width, image.height)
            return image.resized(cropX: (image.width - w) / 2, cropY: (image.height - h) / 2, cropWidth: w, cropHeight: h, width: size, height: size)
        }
        var out = image
        if let r = resize {
            let (w, h) = image.width <= image.height ? (r, max(1, image.height * r / image.width)) : (max(1, image.width * r / image.height), r)
            out = image.resized(cropX: 0, cropY: 0, cropWidth: image.width, cropHeight: image.height, width: w, height: h)
        }
        if let c = centerCrop, out.width >= c, out.height >= c, (out.width, out.height) != (c, c) {
            let x = (out.width - c) / 2, y = (out.height - c) / 2
            out = out.resized(cropX: x, cropY: y, cropWidth: c, cropHeight: c, width: c, height: c)
        }
        return out
    }

    /// Writes the processed image (channels × H × W) to `out`.
    public func apply(_ input: Image, generator: inout RandomGenerator, into out: UnsafeMutablePointer<Float>) {
        let image = geometry(channels == 3 ? input.rgb() : input, generator: &generator)
        precondition(image.channels == channels, "ImagePipeline: image has \(image.channels) channels, pipeline expects \(channels)")
        let (w, h) = outputSize(width: image.width, height: image.height)
        let offX = (w - image.width) / 2, offY = (h - image.height) / 2
        var shiftX = 0, shiftY = 0
        if let pad = randomCropPadding {
            shiftX = Int(generator.next() % UInt64(2 * pad + 1)) - pad
            shiftY = Int(generator.next() % UInt64(2 * pad + 1)) - pad
        }
        let flip = horizontalFlip && generator.next() & 1 == 1
        let scale = std.map { 1 / (255 * $0) }, shift = zip(mean, std).map { -$0 / $1 }
        image.pixels.withUnsafeBufferPointer { px in
            for y in 0..<h {
                let sy = y + shiftY - offY
                for x in 0..<w {
                    let xx = flip ? w - 1 - x : x
                    let sx = xx + shiftX - offX
                    let inside = sy >= 0 && sy < image.height && sx >= 0 && sx < image.width
                    for c in 0..<channels {
                        let v: Float = inside ? Float(px[(sy * image.width + sx) * channels + c]) : 0
                        out[(c * h + y) * w + x] = v * scale[c] + shift[c]
                    }
                }
            }
        }
    }
}
