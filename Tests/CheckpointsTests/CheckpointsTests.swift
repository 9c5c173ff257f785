import Checkpoints
import Engine
import Foundation
import Models
import NN
import XCTest

final class SafeTensorsTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("mmkd-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func testReadsAFileWrittenFromTheSpecification() throws {
        let url = Bundle.module.url(forResource: "reference", withExtension: "safetensors", subdirectory: "Fixtures")!
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Bundle.module.url(forResource: "reference", withExtension: "json", subdirectory: "Fixtures")!)) as! [String: [String: Any]]
        let contents = try SafeTensors.read(url)
        XCTAssertEqual(contents.metadata, ["arch": "test", "epoch": "3"])
        XCTAssertEqual(contents.order, ["conv.weight", "bn.num_batches_tracked", "half.values", "double.values"])
        for (name, e) in expected {
            let t = try XCTUnwrap(contents.tensors[name], name)
            XCTAssertEqual(t.shape, (e["shape"] as! [NSNumber]).map(\.intValue), name)
            XCTAssertEqual(t.scalars, (e["values"] as! [NSNumber]).map(\.floatValue), name)
        }
    }

    func testModelRoundTripIsExactAndCountersAreInt64() throws {
        Initialization.seed(3)
        let model = try ModelZoo.make("resnet8", classes: 10)
        let url = folder.appendingPathComponent("m.safetensors")
        try ModelCheckpoint.save(model, metadata: ["arch": "resnet8"], to: url)
        Initialization.seed(4)
        let other = try ModelZoo.make("resnet8", classes: 10)
        XCTAssertNotEqual(other.stateDict[0].1.scalars, model.stateDict[0].1.scalars)
        let metadata = try ModelCheckpoint.load(url, into: other)
        XCTAssertEqual(metadata["arch"], "resnet8")
        for ((n1, t1), (n2, t2)) in zip(model.stateDict, other.stateDict) {
            XCTAssertEqual(n1, n2); XCTAssertEqual(t1.scalars, t2.scalars, n1)
        }
        // The header declares counters as I64, as PyTorch's state dicts hold them.
        let data = try Data(contentsOf: url)
        let length = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as! [String: Any]
        XCTAssertEqual((header["bn1.num_batches_tracked"] as! [String: Any])["dtype"] as? String, "I64")
        XCTAssertEqual((header["bn1.weight"] as! [String: Any])["dtype"] as? String, "F32")
    }

    func testWrongArchitectureNamesTheFirstMismatch() throws {
        let url = folder.appendingPathComponent("r8.safetensors")
        try ModelCheckpoint.save(try ModelZoo.make("resnet8", classes: 10), metadata: [:], to: url)
        XCTAssertThrowsError(try ModelCheckpoint.load(url, into: try ModelZoo.make("resnet8x4", classes: 10))) { error in
            XCTAssertEqual("\(error)", "\(url.path): does not fit the architecture: state dict entry 'conv1.weight' has shape [16, 3, 3, 3], the architecture expects [32, 3, 3, 3]")
        }
        XCTAssertThrowsError(try ModelCheckpoint.load(url, into: try ModelZoo.make("resnet14", classes: 10))) { error in
            XCTAssertTrue("\(error)".contains("layer1.1.conv1.weight"), "\(error)")
        }
    }

    func testCorruptFilesAreNamed() throws {
        let url = folder.appendingPathComponent("bad.safetensors")
        for (bytes, needle) in [([UInt8]([1, 2, 3]), "shorter than"), ([255, 0, 0, 0, 0, 0, 0, 0, 1], "exceeds the file"),
                                ([2, 0, 0, 0, 0, 0, 0, 0] + Array("[]".utf8), "not a JSON object")] {
            try Data(bytes).write(to: url)
            XCTAssertThrowsError(try SafeTensors.read(url)) { error in
                XCTAssertTrue("\(error)".contains(url.path) && "\(error)".contains(needle), "\(error)")
            }
        }
        // A header promising more data than the file holds.
        let good = folder.appendingPathComponent("good.safetensors")
        try SafeTensors.write([("w", Tensor.ones([4]))], to: good)
        let truncated = try Data(contentsOf: good).dropLast(4)
        try truncated.write(to: url)
        XCTAssertThrowsError(try SafeTensors.read(url)) { XCTAssertTrue("\($0)".contains("'w'"), "\($0)") }
        XCTAssertThrowsError(try SafeTensors.read(folder.appendingPathComponent("none.safetensors"))) {
            XCTAssertEqual($0 as? CheckpointError, .missing(path: self.folder.appendingPathComponent("none.safetensors").path))
        }
    }

    /// Headers whose sizes or offsets overflow, are negative or do not fit: a clear error, never a
    /// trap (each of these crashed the reader before).
    func testHostileHeadersAreErrorsNotCrashes() throws {
        let url = folder.appendingPathComponent("hostile.safetensors")
        func file(_ entry: String, dataBytes: Int = 64) -> Data {
            var json = Array(#"{"w":\#(entry)}"#.utf8)
            while json.count % 8 != 0 { json.append(0x20) }
            var length = UInt64(json.count).littleEndian
            return Data(bytes: &length, count: 8) + Data(json) + Data(count: dataBytes)
        }
        let cases: [(String, String)] = [
            (#"{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775803,9223372036854775807]}"#, "data_offsets"),
            (#"{"dtype":"F32","shape":[1],"data_offsets":[1,-9223372036854775808]}"#, "data_offsets"),
            (#"{"dtype":"F32","shape":[-16],"data_offsets":[64,0]}"#, "shape"),
            (#"{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,64]}"#, "shape"),
            (#"{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,64]}"#, "shape"),
            (#"{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,64]}"#, "data_offsets"),
            (#"{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}"#, "shape"),
            (#"{"dtype":"F32","shape":[16],"data_offsets":[0]}"#, "data_offsets"),
            (#"{"dtype":"F32","shape":[2],"data_offsets":[60,68]}"#, "data_offsets"),
        ]
        for (entry, field) in cases {
            try file(entry).write(to: url)
            XCTAssertThrowsError(try SafeTensors.read(url), entry) { error in
                XCTAssertTrue("\(error)".contains(url.path) && "\(error)".contains("'w'") && "\(error)".contains(field), "\(entry): \(error)")
            }
        }
        try file(#"{"dtype":"F32","shape":[2,0],"data_offsets":[0,0]}"#).write(to: url)
        XCTAssertEqual(try SafeTensors.read(url).tensors["w"]?.shape, [2, 0], "an empty tensor is valid")
    }
}

final class TorchCheckpointTests: XCTestCase {
    func fixture(_ name: String, _ ext: String) -> URL { Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures")! }

    /// Every command loads checkpoints through `ModelCheckpoint.load`, which takes both formats (eval
    /// and gradcam refused a .pth with "header length … exceeds the file" before).
    func testModelCheckpointLoadsPyTorchFilesWhateverTheirName() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mmkd-any-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let reference = try ModelZoo.make("resnet8", classes: 10)
        reference.load(Dictionary(uniqueKeysWithValues: try TorchCheckpoint.read(fixture("resnet8", "pth")).tensors))
        let renamed = folder.appendingPathComponent("teacher.ckpt")
        try FileManager.default.copyItem(at: fixture("resnet8", "pth"), to: renamed)
        for url in [fixture("resnet8", "pth"), renamed] {
            let model = try ModelZoo.make("resnet8", classes: 10)
            let extras = try ModelCheckpoint.load(url, into: model)
            XCTAssertEqual(extras["epoch"], "7", url.lastPathComponent)
            for ((name, a), (_, b)) in zip(model.stateDict, reference.stateDict) { XCTAssertEqual(a.scalars, b.scalars, name) }
        }
    }

    func testRepDistillerStyleTeacherGivesPyTorchsLogits() throws {
        let contents = try TorchCheckpoint.read(fixture("resnet8", "pth"))
        XCTAssertEqual(contents.extras["epoch"], "7")
        XCTAssertEqual(contents.extras["best_acc"], "71.5")
        let model = try ModelZoo.make("resnet8", classes: 10)
        XCTAssertEqual(contents.tensors.map(\.0), model.stateDict.map(\.0), "PyTorch's state-dict order")
        try model.validate(Dictionary(uniqueKeysWithValues: contents.tensors))
        model.load(Dictionary(uniqueKeysWithValues: contents.tensors))
        model.eval()
        let x = Tensor.make([2, 3, 32, 32]) { p, n in for i in 0..<n { p[i] = Float(sin(0.013 * Double(i))) } }
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture("resnet8_logits", "json"))) as! [String: Any]
        let logits = withoutGrad { model(x) }.scalars
        let reference = (expected["logits"] as! [NSNumber]).map(\.floatValue)
        let diff = zip(logits, reference).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
        let norm = reference.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        XCTAssertLessThan(diff / norm, 1e-4)
    }

    func testBareStateDictWithPrefixStridesAndHalf() throws {
        let contents = try TorchCheckpoint.read(fixture("bare", "pth"))
        let t = Dictionary(uniqueKeysWithValues: contents.tensors)
        XCTAssertEqual(contents.tensors.map(\.0), ["w", "h", "n"], "DataParallel's module. prefix is removed")
        XCTAssertEqual(t["w"]?.shape, [3, 2])
        XCTAssertEqual(t["w"]?.scalars, [0, 3, 1, 4, 2, 5], "a transposed view is read through its strides")
        XCTAssertEqual(t["h"]?.scalars, [0.5, -2, 1024])
        XCTAssertEqual(t["n"]?.scalars, [5])
    }

    func testWrongFilesAreNamed() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mmkd-pth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // A folder given as a checkpoint (raw "NSCocoaErrorDomain error 256" before).
        let model = try ModelZoo.make("resnet8", classes: 10)
        XCTAssertThrowsError(try ModelCheckpoint.load(folder, into: model)) {
            XCTAssertTrue("\($0)".hasSuffix("it is a folder; give a checkpoint file in it (best.safetensors, last.safetensors or a .pth)"), "\($0)")
        }
        let notZip = folder.appendingPathComponent("legacy.pth")
        try Data([0x80, 0x02, 0x8A, 0x0A]).write(to: notZip)
        XCTAssertThrowsError(try TorchCheckpoint.read(notZip)) { XCTAssertTrue("\($0)".contains("legacy.pth") && "\($0)".contains("ZIP"), "\($0)") }
        let truncated = folder.appendingPathComponent("cut.pth")
        let bytes = try Data(contentsOf: fixture("resnet8", "pth"))
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        XCTAssertThrowsError(try TorchCheckpoint.read(truncated)) { XCTAssertTrue("\($0)".contains("cut.pth"), "\($0)") }
        // A central-directory entry whose name runs past the end of the file (crashed before).
        var zip = [UInt8](bytes)
        let central = try XCTUnwrap((0..<(zip.count - 4)).last { zip[$0] == 0x50 && zip[$0 + 1] == 0x4B && zip[$0 + 2] == 0x01 && zip[$0 + 3] == 0x02 })
        zip[central + 28] = 0xFF; zip[central + 29] = 0xFF
        let longName = folder.appendingPathComponent("long-name.pth")
        try Data(zip).write(to: longName)
        XCTAssertThrowsError(try TorchCheckpoint.read(longName)) {
            XCTAssertTrue("\($0)".contains("long-name.pth") && "\($0)".contains("name of 65535 bytes"), "\($0)")
        }
    }
}
