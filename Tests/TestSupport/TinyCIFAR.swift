import Engine
import Foundation
import XCTest

/// A tiny CIFAR-10-format data set (five training batches of 8 images, 16 test images) under
/// `folder/cifar-10-batches-bin`, with class-dependent brightness so there is something to learn.
public enum TinyCIFAR {
    public static func write(to folder: String, seed: UInt64) throws {
        let data = folder + "/cifar-10-batches-bin"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        var g = RandomGenerator(seed: seed)
        func batch(_ n: Int) -> Data {
            var bytes: [UInt8] = []
            for _ in 0..<n {
                let label = UInt8(g.next() % 10)
                bytes.append(label)
                bytes += (0..<3072).map { _ in UInt8(truncatingIfNeeded: Int(label) * 20 + Int(g.next() % 40)) }
            }
            return Data(bytes)
        }
        for b in 1...5 { try batch(8).write(to: URL(fileURLWithPath: data + "/data_batch_\(b).bin")) }
        try batch(16).write(to: URL(fileURLWithPath: data + "/test_batch.bin"))
    }
}

/// A test case whose every test gets a fresh folder holding a `TinyCIFAR` data set written with
/// `dataSeed` (removed afterwards). Subclasses that need more in the folder override
/// `setUpWithError` and call `super` first.
open class TinyCIFARTestCase: XCTestCase {
    /// The folder of the current test.
    public var folder: String!
    /// The seed of the data set.
    open var dataSeed: UInt64 { 0 }

    open override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "mmkd-\(String(describing: type(of: self)))-\(UUID().uuidString)"
        try TinyCIFAR.write(to: folder, seed: dataSeed)
    }

    open override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }
}
