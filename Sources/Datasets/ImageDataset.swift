import Engine
import Foundation

/// A labelled image data set: images are decoded on demand (`image(at:)` may be called from
/// several threads at once).
public protocol ImageDataset: Sendable {
    var count: Int { get }
    /// Class names, indexed by label.
    var classNames: [String] { get }
    func label(at index: Int) -> Int
    func image(at index: Int) throws -> Image
}

extension ImageDataset {
    public var classCount: Int { classNames.count }
}

/// Images held decoded in memory (the binary formats: CIFAR, IDX).
public struct InMemoryDataset: ImageDataset {
    public let width: Int, height: Int, channels: Int
    public let classNames: [String]
    let pixels: [UInt8]
    let labels: [Int]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8], labels: [Int], classNames: [String]) {
        precondition(pixels.count == labels.count * width * height * channels, "InMemoryDataset: pixel count does not match labels")
        self.width = width; self.height = height; self.channels = channels
        self.pixels = pixels; self.labels = labels; self.classNames = classNames
    }

    public var count: Int { labels.count }
    public func label(at index: Int) -> Int { labels[index] }
    public func image(at index: Int) throws -> Image {
        let size = width * height * channels
        return Image(width: width, height: height, channels: channels, pixels: Array(pixels[(index * size)..<((index + 1) * size)]))
    }
}

/// Image files with labels, decoded on demand (JPEG or PNG).
public struct FileDataset: ImageDataset {
    public let classNames: [String]
    public let files: [String]
    let labels: [Int]

    public init(files: [String], labels: [Int], classNames: [String]) {
        self.files = files; self.labels = labels; self.classNames = classNames
    }

    public var count: Int { files.count }
    public func label(at index: Int) -> Int { labels[index] }
    public func image(at index: Int) throws -> Image {
        let path = files[index]
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.missing(path: path, expected: "a JPEG or PNG image")
        }
        return try ImageCodecs.decode([UInt8](data), path: path)
    }
}

/// A fixed, seeded random subset of another data set (for short budgets).
public struct SubsetDataset: ImageDataset {
    public let base: any ImageDataset
    public let indices: [Int]

    public init(_ base: any ImageDataset, count: Int, seed: UInt64) {
        var order = Array(0..<base.count)
        var g = RandomGenerator(seed: seed ^ 0x5EED_5EED)
        order.shuffle(using: &g)
        self.base = base
        indices = Array(order.prefix(min(count, base.count))).sorted()
    }

    /// `count` images spread evenly over `base` (index ⌊i·base.count/count⌋), in order: the same
    /// images for every run and seed, so that quick runs compare, and every part of the set in its
    /// share, so that a set stored class by class (an image folder) is not tested on its first
    /// classes alone.
    public init(_ base: any ImageDataset, spreadOver count: Int) {
        self.base = base
        let n = min(max(count, 0), base.count)
        indices = (0..<n).map { $0 * base.count / n }
    }

    public var count: Int { indices.count }
    public var classNames: [String] { base.classNames }
    public func label(at index: Int) -> Int { base.label(at: indices[index]) }
    public func image(at index: Int) throws -> Image { try base.image(at: indices[index]) }
}
