import Datasets
import Engine
import Foundation
import Fuzzing
import XCTest

/// Writes tiny files in each exact on-disk format, reads them back, and checks the errors of broken
/// ones.
final class DatasetFormatTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "mmkd-data-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    func write(_ bytes: [UInt8], _ name: String) throws {
        let path = folder + "/" + name
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func assertError(_ expected: (DataError) -> Bool, mentioning path: String, _ body: () throws -> Void,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let e = error as? DataError else { return XCTFail("not a DataError: \(error)", file: file, line: line) }
            XCTAssertTrue(expected(e), "unexpected error \(e)", file: file, line: line)
            XCTAssertTrue("\(e)".contains(path), "error '\(e)' does not name \(path)", file: file, line: line)
        }
    }

    /// A CIFAR record: label byte(s), then planar R, G, B planes of a recognisable pattern.
    func cifarRecord(labels: [UInt8], seed: Int) -> [UInt8] {
        labels + (0..<3072).map { UInt8(truncatingIfNeeded: $0 * 7 + seed) }
    }

    func testCIFAR10BinaryRoundTrip() throws {
        for b in 1...5 { try write(cifarRecord(labels: [UInt8(b)], seed: b) + cifarRecord(labels: [9], seed: 100 + b), "cifar-10-batches-bin/data_batch_\(b).bin") }
        try write(cifarRecord(labels: [3], seed: 42), "cifar-10-batches-bin/test_batch.bin")
        let train = try DatasetFormats.cifarBinary(directory: folder, hundred: false, train: true)
        XCTAssertEqual(train.count, 10)
        XCTAssertEqual((0..<10).map(train.label(at:)), [1, 9, 2, 9, 3, 9, 4, 9, 5, 9])
        let image = try train.image(at: 0)
        XCTAssertEqual([image.width, image.height, image.channels], [32, 32, 3])
        // Pixel (0,0): R = plane 0 byte 0, G = plane 1 byte 0, B = plane 2 byte 0.
        XCTAssertEqual(Array(image.pixels[0..<3]), [UInt8(truncatingIfNeeded: 1), UInt8(truncatingIfNeeded: 1024 * 7 + 1), UInt8(truncatingIfNeeded: 2048 * 7 + 1)])
        let test = try DatasetFormats.cifarBinary(directory: folder + "/cifar-10-batches-bin", hundred: false, train: false)
        XCTAssertEqual(test.count, 1)
        XCTAssertEqual(test.label(at: 0), 3)
    }

    func testCIFAR100BinaryUsesFineLabels() throws {
        try write(cifarRecord(labels: [4, 77], seed: 1) + cifarRecord(labels: [1, 12], seed: 2), "train.bin")
        let train = try DatasetFormats.cifarBinary(directory: folder, hundred: true, train: true)
        XCTAssertEqual([train.label(at: 0), train.label(at: 1)], [77, 12])
        XCTAssertEqual(train.classCount, 100)
    }

    func testCIFARErrorsNameTheFile() throws {
        try write(Array(cifarRecord(labels: [1], seed: 0).dropLast(10)), "data_batch_1.bin")
        assertError({ if case .corrupt = $0 { return true }; return false }, mentioning: "data_batch_1.bin") {
            _ = try DatasetFormats.cifarBinary(directory: self.folder, hundred: false, train: true)
        }
        try write(cifarRecord(labels: [11], seed: 0), "test_batch.bin")
        assertError({ if case .corrupt = $0 { return true }; return false }, mentioning: "test_batch.bin") {
            _ = try DatasetFormats.cifarBinary(directory: self.folder, hundred: false, train: false)
        }
        assertError({ if case .missing = $0 { return true }; return false }, mentioning: "test.bin") {
            _ = try DatasetFormats.cifarBinary(directory: self.folder, hundred: true, train: false)
        }
    }

    func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
        // Written by the system gzip, the format Debian's dataset-fashion-mnist ships.
        let raw = folder + "/raw.bin"
        try Data(bytes).write(to: URL(fileURLWithPath: raw))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-kf", raw]
        try p.run(); p.waitUntilExit()
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw + ".gz")))
    }

    func testFashionMNISTIDXGzippedAndPlain() throws {
        let images = (0..<(3 * 28 * 28)).map { UInt8($0 % 251) }
        try write(try gzip(SeedFiles.idx([3, 28, 28], images)), "train-images-idx3-ubyte.gz")
        try write(try gzip(SeedFiles.idx([3], [7, 0, 9])), "train-labels-idx1-ubyte.gz")
        try write(SeedFiles.idx([1, 28, 28], Array(images.prefix(784))), "t10k-images-idx3-ubyte")
        try write(SeedFiles.idx([1], [4]), "t10k-labels-idx1-ubyte")
        let train = try DatasetFormats.fashionMNIST(directory: folder, train: true)
        XCTAssertEqual(train.count, 3)
        XCTAssertEqual((0..<3).map(train.label(at:)), [7, 0, 9])
        XCTAssertEqual(try train.image(at: 1).pixels, Array(images[784..<1568]))
        let test = try DatasetFormats.fashionMNIST(directory: folder, train: false)
        XCTAssertEqual(test.label(at: 0), 4)
    }

    func testIDXErrors() throws {
        try write([0, 0, 9, 3, 0, 0, 0, 1], "train-images-idx3-ubyte")
        try write(SeedFiles.idx([1], [1]), "train-labels-idx1-ubyte")
        assertError({ if case .corrupt = $0 { return true }; return false }, mentioning: "train-images-idx3-ubyte") {
            _ = try DatasetFormats.fashionMNIST(directory: self.folder, train: true)
        }
        try write(SeedFiles.idx([2, 28, 28], [UInt8](repeating: 0, count: 2 * 784)), "train-images-idx3-ubyte")
        assertError({ if case .mismatch = $0 { return true }; return false }, mentioning: "train-labels-idx1-ubyte") {
            _ = try DatasetFormats.fashionMNIST(directory: self.folder, train: true)
        }
        try write(SeedFiles.idx([2, 28, 28], [UInt8](repeating: 0, count: 784)), "train-images-idx3-ubyte")
        assertError({ if case .corrupt = $0 { return true }; return false }, mentioning: "train-images-idx3-ubyte") {
            _ = try DatasetFormats.fashionMNIST(directory: self.folder, train: true)
        }
        try write([0x1F, 0x8B, 8, 0, 0, 0], "t10k-images-idx3-ubyte.gz")
        assertError({ if case .corrupt = $0 { return true }; return false }, mentioning: "t10k-images-idx3-ubyte.gz") {
            _ = try DatasetFormats.fashionMNIST(directory: self.folder, train: false)
        }
        // Dimensions whose product overflows (0xFFFFFFFF³ trapped before).
        try write(SeedFiles.idx([0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], [1, 2, 3]), "train-images-idx3-ubyte")
        assertError({ if case .corrupt(_, let reason) = $0 { return reason.contains("multiply") }; return false }, mentioning: "train-images-idx3-ubyte") {
            _ = try DatasetFormats.fashionMNIST(directory: self.folder, train: true)
        }
    }

    func testImageFolderWithPNGAndJPEG() throws {
        let pattern = Image(width: 5, height: 4, channels: 3, pixels: (0..<60).map { UInt8($0 * 4) })
        try write(try ImageCodecs.encodePNG(pattern), "root/cat/a.png")
        try write(try ImageCodecs.encodeJPEG(pattern, quality: 100), "root/dog/images/b.jpg")
        try write(try ImageCodecs.encodePNG(Image(width: 2, height: 2, channels: 1, pixels: [0, 50, 100, 150])), "root/dog/images/c.png")
        let set = try DatasetFormats.imageFolder(folder + "/root")
        XCTAssertEqual(set.classNames, ["cat", "dog"])
        XCTAssertEqual(set.count, 3)
        XCTAssertEqual((0..<3).map(set.label(at:)), [0, 1, 1])
        XCTAssertEqual(try set.image(at: 0), pattern, "PNG is lossless")
        let jpeg = try set.image(at: 1)
        XCTAssertEqual([jpeg.width, jpeg.height, jpeg.channels], [5, 4, 3])
        XCTAssertLessThan(zip(jpeg.pixels, pattern.pixels).map { abs(Int($0) - Int($1)) }.max()!, 40)
        XCTAssertEqual(try set.image(at: 2).channels, 1)
    }

    func testTinyImageNetLayout() throws {
        let pattern = Image(width: 4, height: 4, channels: 3, pixels: (0..<48).map { UInt8($0 * 5) })
        for wnid in ["n01443537", "n01629819"] {
            try write(try ImageCodecs.encodePNG(pattern), "tiny/train/\(wnid)/images/\(wnid)_0.JPEG")
            try write(Array("\(wnid)_0.JPEG\t0\t0\t4\t4\n".utf8), "tiny/train/\(wnid)/\(wnid)_boxes.txt")
        }
        try write(try ImageCodecs.encodePNG(pattern), "tiny/val/images/val_0.JPEG")
        try write(try ImageCodecs.encodePNG(pattern), "tiny/val/images/val_1.JPEG")
        try write(Array("val_0.JPEG\tn01629819\t0\t0\t3\t3\nval_1.JPEG\tn01443537\t1\t1\t4\t4\n".utf8), "tiny/val/val_annotations.txt")
        let spec = try DatasetSpec(parsing: "tiny-imagenet:\(folder!)/tiny")
        let (train, val) = try spec.load()
        XCTAssertEqual(train.classNames, ["n01443537", "n01629819"])
        XCTAssertEqual(train.count, 2, "only the images/ files, not the box lists")
        XCTAssertEqual([val.label(at: 0), val.label(at: 1)], [1, 0])
        try write(Array("val_0.JPEG\tn99999999\t0\t0\t3\t3\n".utf8), "tiny/val/val_annotations.txt")
        assertError({ if case .mismatch = $0 { return true }; return false }, mentioning: "val_annotations.txt") {
            _ = try DatasetFormats.tinyImageNet(root: self.folder + "/tiny", train: false)
        }
    }

    func testResizeAndCrops() {
        // A horizontal ramp resized 4 → 8 keeps its ends and increases monotonically.
        let ramp = Image(width: 4, height: 1, channels: 1, pixels: [0, 80, 160, 240])
        let wide = ramp.resized(cropX: 0, cropY: 0, cropWidth: 4, cropHeight: 1, width: 8, height: 1)
        XCTAssertEqual(wide.pixels.first, 0); XCTAssertEqual(wide.pixels.last, 240)
        XCTAssertEqual(wide.pixels, wide.pixels.sorted())
        XCTAssertEqual(wide.pixels[2], 60, "bilinear with aligned pixel centres: output 2 samples input 0.75")
        // Resize(8) + CenterCrop(4) of a 16×8 image gives 4×4; random-resized crops give size × size.
        let image = Image(width: 16, height: 8, channels: 3, pixels: (0..<384).map { UInt8($0 % 256) })
        var p = ImagePipeline(channels: 3, mean: [0, 0, 0], std: [1, 1, 1])
        p.resize = 8; p.centerCrop = 4
        XCTAssertEqual(p.outputSize(width: 16, height: 8).width, 4)
        var g = RandomGenerator(seed: 1)
        var out = [Float](repeating: 0, count: 48)
        p.apply(image, generator: &g, into: &out)
        var r = ImagePipeline(channels: 3, horizontalFlip: true, mean: [0, 0, 0], std: [1, 1, 1])
        r.randomResizedCrop = 5
        XCTAssertEqual(r.outputSize(width: 16, height: 8).width, 5)
        var sizes = Set<[Float]>()
        for s in 0..<5 {
            var gs = RandomGenerator(seed: UInt64(s))
            var o = [Float](repeating: -1, count: 75)
            r.apply(image, generator: &gs, into: &o)
            XCTAssertFalse(o.contains(-1))
            sizes.insert(o)
        }
        XCTAssertGreaterThan(sizes.count, 1, "crops differ by seed")
    }

    func testImageFolderErrors() throws {
        assertError({ if case .missing = $0 { return true }; return false }, mentioning: "nowhere") {
            _ = try DatasetFormats.imageFolder(self.folder + "/nowhere")
        }
        try FileManager.default.createDirectory(atPath: folder + "/empty", withIntermediateDirectories: true)
        assertError({ if case .emptyFolder = $0 { return true }; return false }, mentioning: "empty") {
            _ = try DatasetFormats.imageFolder(self.folder + "/empty")
        }
        try FileManager.default.createDirectory(atPath: folder + "/root2/cat", withIntermediateDirectories: true)
        assertError({ if case .emptyFolder = $0 { return true }; return false }, mentioning: "root2/cat") {
            _ = try DatasetFormats.imageFolder(self.folder + "/root2")
        }
        try write([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3], "root3/cat/broken.jpg")
        let set = try DatasetFormats.imageFolder(folder + "/root3")
        assertError({ if case .corrupt = $0 { return true }; return false }, mentioning: "broken.jpg") { _ = try set.image(at: 0) }
    }
}

/// The subsets of short budgets: a test limit must not test a set stored class by class (an image
/// folder) on its first classes alone.
final class SubsetDatasetTests: XCTestCase {
    /// `classes` classes of `perClass` 1×1 images each, stored class by class, as an image folder is.
    static func classSorted(classes: Int, perClass: Int) -> InMemoryDataset {
        let labels = (0..<classes).flatMap { Array(repeating: $0, count: perClass) }
        return InMemoryDataset(width: 1, height: 1, channels: 1, pixels: labels.map { UInt8($0) }, labels: labels,
                               classNames: (0..<classes).map { "class\($0)" })
    }

    func testATestLimitTakesEveryClassInItsShare() {
        let base = Self.classSorted(classes: 10, perClass: 100)
        for n in [10, 50, 500, 999] {
            let subset = SubsetDataset(base, spreadOver: n)
            XCTAssertEqual(subset.count, n)
            XCTAssertEqual(Set(subset.indices).count, n, "indices repeat for \(n)")
            XCTAssertEqual(subset.indices, subset.indices.sorted())
            let perClass = (0..<subset.count).reduce(into: [Int](repeating: 0, count: 10)) { $0[subset.label(at: $1)] += 1 }
            XCTAssertLessThanOrEqual(perClass.max()! - perClass.min()!, 1, "classes of a limit of \(n): \(perClass)")
        }
        XCTAssertEqual(SubsetDataset(base, spreadOver: 5000).indices, Array(0..<1000), "a limit past the set takes it whole")
        XCTAssertEqual(SubsetDataset(base, spreadOver: 0).count, 0)
    }
}

final class BatchLoaderTests: XCTestCase {
    func dataset(count: Int) -> InMemoryDataset {
        InMemoryDataset(width: 6, height: 6, channels: 1, pixels: (0..<(count * 36)).map { UInt8($0 % 256) },
                        labels: (0..<count).map { $0 % 3 }, classNames: ["a", "b", "c"])
    }

    func allBatches(_ loader: BatchLoader, epoch: Int, start: Int = 0) throws -> [Batch] {
        let it = loader.batches(epoch: epoch, startingAt: start)
        var out: [Batch] = []
        while let b = try it.next() { out.append(b) }
        return out
    }

    func testSameSeedSameBatchesWhateverTheThreads() throws {
        let pipeline = ImagePipeline(channels: 3, padToSize: 8, randomCropPadding: 2, horizontalFlip: true, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        let a = BatchLoader(dataset: dataset(count: 23), batchSize: 5, shuffle: true, dropLast: true, pipeline: pipeline, seed: 7, workers: 1)
        let b = BatchLoader(dataset: dataset(count: 23), batchSize: 5, shuffle: true, dropLast: true, pipeline: pipeline, seed: 7, workers: 3)
        let ba = try allBatches(a, epoch: 2), bb = try allBatches(b, epoch: 2)
        XCTAssertEqual(ba.count, 4, "drop-last keeps 4 full batches of 5 from 23")
        XCTAssertEqual(ba.map(\.indices), bb.map(\.indices))
        XCTAssertEqual(ba.map(\.images.scalars), bb.map(\.images.scalars))
        XCTAssertEqual(ba[0].images.shape, [5, 3, 8, 8])
        XCTAssertEqual(Set(ba.flatMap(\.indices)).count, 20)
        XCTAssertNotEqual(try allBatches(a, epoch: 3).map(\.indices), ba.map(\.indices), "each epoch reshuffles")
        // Resuming mid-epoch gives the remaining batches exactly.
        XCTAssertEqual(try allBatches(a, epoch: 2, start: 2).map(\.images.scalars), ba[2...].map(\.images.scalars))
    }

    func testWithoutShuffleKeepsOrderAndPartialLastBatch() throws {
        let loader = BatchLoader(dataset: dataset(count: 7), batchSize: 3, shuffle: false, dropLast: false,
                                 pipeline: ImagePipeline(channels: 1, mean: [0], std: [1]), seed: 1)
        let batches = try allBatches(loader, epoch: 0)
        XCTAssertEqual(batches.map(\.indices), [[0, 1, 2], [3, 4, 5], [6]])
        XCTAssertEqual(batches[0].labels, [0, 1, 2])
        // No augmentation, mean 0, std 1: the values are the bytes / 255.
        XCTAssertEqual(batches[0].images.scalars[7], Float(7) / 255, accuracy: 1e-6)
    }

    func testAugmentationCropsWithZeroPaddingAndFlips() {
        let image = Image(width: 2, height: 2, channels: 1, pixels: [10, 20, 30, 40])
        let flip = ImagePipeline(channels: 1, horizontalFlip: true, mean: [0], std: [1.0 / 255])
        var flipped = 0
        for s in 0..<20 {
            var g = RandomGenerator(seed: UInt64(s))
            var out = [Float](repeating: 0, count: 4)
            flip.apply(image, generator: &g, into: &out)
            XCTAssertTrue(out == [10, 20, 30, 40] || out == [20, 10, 40, 30], "\(out)")
            if out == [20, 10, 40, 30] { flipped += 1 }
        }
        XCTAssertTrue(flipped > 0 && flipped < 20, "flips about half the time")
        let crop = ImagePipeline(channels: 1, randomCropPadding: 1, mean: [0], std: [1.0 / 255])
        var sawShift = false
        for s in 0..<30 {
            var g = RandomGenerator(seed: UInt64(s))
            var out = [Float](repeating: -1, count: 4)
            crop.apply(image, generator: &g, into: &out)
            XCTAssertEqual(out.filter { $0 != 0 }.count <= 4, true)
            XCTAssertTrue(Set(out).isSubset(of: [0, 10, 20, 30, 40]))
            if out.contains(0) { sawShift = true }
        }
        XCTAssertTrue(sawShift, "crops shifted into the zero padding")
    }
}

/// CIFAR's python layout, written byte by byte as Python's pickle (protocol 2) lays it out.
final class CIFARPythonTests: XCTestCase {
    func testCIFAR100PythonLayout() throws {
        let folder = NSTemporaryDirectory() + "mmkd-cifarpy-\(UUID().uuidString)/cifar-100-python"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: (folder as NSString).deletingLastPathComponent) }
        let pixels = (0..<(2 * 3072)).map { UInt8(truncatingIfNeeded: $0 * 3) }
        try Data(SeedFiles.cifarPickle(labels: [42, 99], labelKey: "fine_labels", pixels: pixels, count: 2)).write(to: URL(fileURLWithPath: folder + "/train"))
        try Data(SeedFiles.cifarPickle(labels: [7], labelKey: "fine_labels", pixels: Array(pixels.prefix(3072)), count: 1)).write(to: URL(fileURLWithPath: folder + "/test"))
        let (train, test) = try DatasetSpec(parsing: "cifar100:" + (folder as NSString).deletingLastPathComponent).load()
        XCTAssertEqual(train.count, 2); XCTAssertEqual(test.count, 1)
        XCTAssertEqual([train.label(at: 0), train.label(at: 1)], [42, 99])
        let image = try train.image(at: 1)
        XCTAssertEqual(Array(image.pixels[0..<3]), [pixels[3072], pixels[3072 + 1024], pixels[3072 + 2048]], "planar rows become RGB pixels")
        // Mismatched label count names the file.
        try Data(SeedFiles.cifarPickle(labels: [1], labelKey: "fine_labels", pixels: pixels, count: 2)).write(to: URL(fileURLWithPath: folder + "/test"))
        XCTAssertThrowsError(try DatasetFormats.cifarPython(directory: folder, hundred: true, train: false)) {
            XCTAssertTrue("\($0)".contains("cifar-100-python/test") && "\($0)".contains("1 labels for 2 images"), "\($0)")
        }
        try Data([0x80, 0x02, 0x7D]).write(to: URL(fileURLWithPath: folder + "/test"))
        XCTAssertThrowsError(try DatasetFormats.cifarPython(directory: folder, hundred: true, train: false)) {
            XCTAssertTrue("\($0)".contains("cifar-100-python/test"), "\($0)")
        }
    }
}

/// Stanford Dogs' layout, with MATLAB v5 lists written byte by byte (one variable compressed).
final class StanfordDogsTests: XCTestCase {
    func testReadsListsAndImages() throws {
        let root = NSTemporaryDirectory() + "mmkd-dogs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let image = Image(width: 3, height: 2, channels: 3, pixels: (0..<18).map { UInt8($0 * 10) })
        for path in ["n02085620-Chihuahua/a.jpg", "n02085782-Japanese_spaniel/b.jpg", "n02085782-Japanese_spaniel/c.jpg"] {
            try FileManager.default.createDirectory(atPath: root + "/Images/" + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(try ImageCodecs.encodeJPEG(image)).write(to: URL(fileURLWithPath: root + "/Images/" + path))
        }
        try Data(SeedFiles.stanfordDogsList(files: ["n02085620-Chihuahua/a.jpg", "n02085782-Japanese_spaniel/b.jpg"], labels: [1, 2])).write(to: URL(fileURLWithPath: root + "/train_list.mat"))
        try Data(SeedFiles.stanfordDogsList(files: ["n02085782-Japanese_spaniel/c.jpg"], labels: [2])).write(to: URL(fileURLWithPath: root + "/test_list.mat"))
        let (train, test) = try DatasetSpec(parsing: "stanford-dogs:\(root)").load()
        XCTAssertEqual(train.classNames, ["n02085620-Chihuahua", "n02085782-Japanese_spaniel"])
        XCTAssertEqual([train.label(at: 0), train.label(at: 1), test.label(at: 0)], [0, 1, 1])
        XCTAssertEqual(try test.image(at: 0).width, 3)
        let pipeline = try DatasetSpec(parsing: "stanford-dogs:\(root)").pipeline(train: false)
        XCTAssertEqual(pipeline.outputSize(width: 500, height: 375).width, 224)

        try Data(SeedFiles.stanfordDogsList(files: ["x.jpg"], labels: [9])).write(to: URL(fileURLWithPath: root + "/test_list.mat"))
        XCTAssertThrowsError(try DatasetFormats.stanfordDogs(root: root, train: false)) {
            XCTAssertTrue("\($0)".contains("test_list.mat") && "\($0)".contains("label 9"), "\($0)")
        }
        try Data(Array("HDF5 file".utf8) + [UInt8](repeating: 0, count: 200)).write(to: URL(fileURLWithPath: root + "/test_list.mat"))
        XCTAssertThrowsError(try DatasetFormats.stanfordDogs(root: root, train: false)) {
            XCTAssertTrue("\($0)".contains("test_list.mat") && "\($0)".contains("MAT"), "\($0)")
        }
    }
}
