import Engine

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
        (max(width, padToSize ?? 0), max(height, padToSize ?? 0))
    }

    /// Writes the processed image (channels × H × W) to `out`.
    public func apply(_ input: Image, generator: inout RandomGenerator, into out: UnsafeMutablePointer<Float>) {
        let image = channels == 3 ? input.rgb() : input
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
