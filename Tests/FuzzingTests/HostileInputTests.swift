import Checkpoints
import Datasets
import Foundation
import Fuzzing
import Serialization
import XCTest

/// Files crafted to break a parser: huge, negative or overflowing sizes, offsets and strides, deep
/// nesting, decompression bombs, giant image headers. Each must end in an error that names the file
/// and the field, quickly and without reading out of bounds.
final class HostileInputTests: XCTestCase {
    func message(_ harness: String, _ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> String {
        guard let h = ParserHarness.named(harness: harness) else { XCTFail("no harness \(harness)", file: file, line: line); return "" }
        return h.run(bytes) ?? "read"
    }

    func tensor(offset: Int = 0, size: [Int] = [2, 3], stride: [Int] = [3, 1], values: Int = 6) -> [UInt8] {
        SeedFiles.torchCheckpoint([SeedFiles.TorchTensor(name: "w", storage: "0", values: (0..<values).map(Float.init), offset: offset, size: size, stride: stride)])
    }

    func testPyTorchStoragesViewsAreCheckedAgainstTheStorage() throws {
        let views = try TorchCheckpoint.parse(Data(try XCTUnwrap(SeedFiles.corpus()["pth"]?["views.pth"])), path: "views.pth")
        let byName = Dictionary(uniqueKeysWithValues: views.tensors.map { ($0.0, $0.1) })
        XCTAssertEqual(byName["fc.weight_t"]?.shape, [2, 2])
        XCTAssertEqual(byName["fc.weight_t"]?.scalars, [1, 4, 2, 5], "offset 1, strides (1, 3) of 0…5")
        XCTAssertEqual(message("pth", tensor()), "read")

        let negative = "expected sizes, strides and offset ≥ 0 and at most 2³¹ values"
        XCTAssertTrue(message("pth", tensor(offset: -100_000_000)).contains(negative), "the out-of-bounds read (SIGSEGV) of an offset of −10⁸")
        XCTAssertTrue(message("pth", tensor(stride: [-100_000_000, 1])).contains(negative))
        XCTAssertTrue(message("pth", tensor(stride: [3, -1])).contains(negative), "a stride of −1 was read without complaint")
        XCTAssertTrue(message("pth", tensor(size: [1 << 62, 4])).contains(negative))
        XCTAssertTrue(message("pth", tensor(size: [-2, 3])).contains(negative))
        XCTAssertTrue(message("pth", tensor(offset: 1 << 62)).contains("reaches past its storage of 6 values"))
        XCTAssertTrue(message("pth", tensor(stride: [1 << 62, 1])).contains("reaches past its storage"))
        XCTAssertTrue(message("pth", tensor(offset: 1)).contains("(size [2, 3], stride [3, 1], offset 1) reaches past its storage of 6 values"))
        XCTAssertTrue(message("pth", tensor(size: [1 << 30], stride: [0])).contains("views are read only up to 16777216 values"),
                      "a stride-0 view may not turn 24 bytes into 4 GiB")
        XCTAssertEqual(message("pth", tensor(size: [4, 3], stride: [0, 1])), "read", "a broadcast view within the limit reads")
    }

    func testZipEntriesThatInflatePastTheirDeclaredSizeAreRefused() throws {
        // A deflated data.pkl whose central directory claims 10 bytes.
        let pickle = [UInt8](repeating: 0x4E, count: 5000) + [0x2E]
        var bomb = SeedFiles.zip([("archive/data.pkl", Self.deflate(pickle))])
        // Mark the entry deflated (method 8) with an uncompressed size of 10, in both headers.
        let central = try XCTUnwrap((0..<(bomb.count - 4)).first { bomb[$0] == 0x50 && bomb[$0 + 1] == 0x4B && bomb[$0 + 2] == 1 && bomb[$0 + 3] == 2 })
        for header in [0, central] {
            let methodAt = header + (header == 0 ? 8 : 10), sizeAt = header + (header == 0 ? 22 : 24)
            bomb[methodAt] = 8
            bomb.replaceSubrange(sizeAt..<(sizeAt + 4), with: [10, 0, 0, 0])
        }
        XCTAssertTrue(message("pth", bomb).contains("expands past 10 bytes"), message("pth", bomb))
        XCTAssertThrowsError(try Inflate.inflate(SeedFiles.gzip([UInt8](repeating: 0, count: 1 << 20)), framing: .gzip, path: "g.gz", limit: 1000)) {
            XCTAssertEqual("\($0)", "g.gz: corrupt or truncated: compressed data expands past 1000 bytes")
        }
    }

    static func deflate(_ bytes: [UInt8]) -> [UInt8] {
        // Raw deflate: the gzip member without its 10-byte header and 8-byte trailer.
        let gz = SeedFiles.gzip(bytes)
        return Array(gz[10..<(gz.count - 8)])
    }

    func testPicklesCannotNestWithoutBoundOrExpandTheirMessages() throws {
        func unpickle(_ bytes: [UInt8]) -> String {
            var u = Unpickler(bytes, path: "p.pkl")
            do { return "\(try u.load())" } catch { return "\(error)" }
        }
        // One byte per level (TUPLE1): a million levels would overflow the stack when released.
        XCTAssertTrue(unpickle([0x4E] + [UInt8](repeating: 0x85, count: 100_000) + [0x2E]).contains("nested more than 500 deep"))
        XCTAssertEqual(unpickle([0x4E] + [UInt8](repeating: 0x85, count: 3) + [0x2E]), "(((None)))")
        // A list appended to many times is still one level deep.
        XCTAssertTrue(unpickle([0x5D] + (0..<2000).flatMap { _ in [0x4E, 0x61] } + [0x2E]).hasPrefix("[None, None"))
        // DUP + TUPLE2 doubles the value each 2 bytes: 2⁶⁰ leaves, printed in a bounded message.
        let doubled: [UInt8] = [0x4E] + (0..<60).flatMap { _ in [UInt8(0x32), 0x86] } + [0x2E]
        let start = Date()
        XCTAssertLessThan(unpickle(doubled).count, 1000)
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
        // Lengths past the end, near 2⁶³, and negative as 8-byte values.
        XCTAssertTrue(unpickle([0x8D] + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F] + [0x2E]).contains("truncated"))
        XCTAssertTrue(unpickle([0x8E] + [UInt8](repeating: 0xFF, count: 8) + [0x2E]).contains("truncated"))
        XCTAssertTrue(unpickle([0x8B, 0xFF, 0xFF, 0xFF, 0x7F]).contains("integer of 2147483647 bytes"))
        XCTAssertTrue(unpickle(Array("Inot-a-number\n.".utf8)).contains("INT 'not-a-number' is not an integer"))
    }

    func testMATFilesWithImpossibleElementsAreRefused() throws {
        let good = try XCTUnwrap(SeedFiles.corpus()["mat"]?["train_list.mat"])
        XCTAssertEqual(message("mat", good), "read")
        // A small element (size in the tag's upper half) claiming 300 bytes instead of at most 4.
        var small = Array(good.prefix(128)) + [14, 0, 0x2C, 0x01] + [0, 0, 0, 0]
        XCTAssertTrue(message("mat", small).contains("small element at byte 128 claims 300 bytes, expected at most 4"), message("mat", small))
        small = Array(good.prefix(128))
        let matrix = SeedFiles.matMatrix("labels", classID: 6, dims: [0x7FFF_FFFF, 0x7FFF_FFFF], SeedFiles.matElement(2, [1, 2]))
        XCTAssertTrue(message("mat", small + matrix).contains("more elements than its"), message("mat", small + matrix))
        // Cells within cells, 100 deep.
        var cell = SeedFiles.matText("x")
        for _ in 0..<100 { cell = SeedFiles.matMatrix("", classID: 1, dims: [1, 1], cell) }
        XCTAssertTrue(message("mat", small + cell).contains("cells nested more than 64 deep"), message("mat", small + cell))
        // Labels that are not whole numbers (NaN trapped in Int(_:)).
        let nan = SeedFiles.matMatrix("labels", classID: 6, dims: [1, 1], SeedFiles.matElement(9, withUnsafeBytes(of: Double.nan) { Array($0) }))
        let list = SeedFiles.matMatrix("file_list", classID: 1, dims: [1, 1], SeedFiles.matText("a.jpg"))
        XCTAssertTrue(message("mat", small + list + nan).contains("entry 1 has label nan, expected a whole breed number from 1"), message("mat", small + list + nan))
    }

    func testImageHeadersCannotAllocateBeyondTheLimit() throws {
        let corpus = try SeedFiles.corpus()
        // JPEG: the SOF0 frame header's height and width set to 65500 (12 GB of pixels).
        var jpeg = try XCTUnwrap(corpus["jpeg"]?["rgb.jpg"])
        let sof = try XCTUnwrap((0..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange((sof + 5)..<(sof + 9), with: [0xFF, 0xDC, 0xFF, 0xDC])
        XCTAssertTrue(message("jpeg", jpeg).contains("image of 65500 × 65500 pixels, more than the 67108864 this reader decodes"), message("jpeg", jpeg))
        // PNG: IHDR of 20000 × 20000 with its CRC fixed, so that libpng accepts the header.
        var png = try XCTUnwrap(corpus["png"]?["rgb.png"])
        png.replaceSubrange(16..<24, with: [0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20])
        let crc = Self.crc32(Array(png[12..<29]))
        png.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)])
        XCTAssertTrue(message("png", png).contains("image of 20000 × 20000 pixels"), message("png", png))
    }

    /// CRC-32 (IEEE), as PNG chunks carry it.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    func testCIFARPicklesWithOverflowingShapesAreRefused() throws {
        let pixels = [UInt8](repeating: 7, count: 3072)
        var pickle = SeedFiles.cifarPickle(labels: [1], labelKey: "labels", pixels: pixels, count: 1)
        XCTAssertEqual(message("cifar-pickle", pickle), "read")
        // The count N as BININT1 1 → a LONG1 of 2⁶² (N × 3072 overflowed).
        let count = try XCTUnwrap((0..<(pickle.count - 4)).first { pickle[$0] == 0x4B && pickle[$0 + 1] == 1 && pickle[$0 + 2] == 0x4D })
        pickle.replaceSubrange(count..<(count + 2), with: [0x8A, 8, 0, 0, 0, 0, 0, 0, 0, 0x40])
        XCTAssertTrue(message("cifar-pickle", pickle).contains("'data' has shape [4611686018427387904, 3072], expected N × 3072"), message("cifar-pickle", pickle))
    }
}
