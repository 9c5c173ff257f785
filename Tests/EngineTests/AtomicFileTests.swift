import Engine
import Foundation
import XCTest

/// Writes that fail (a missing folder, a file-size limit standing in for a full disk) leave the old
/// file as it was and no temporary file, and say why in plain words.
final class AtomicFileTests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "mmkd-atomic-\(UUID().uuidString)"
        try AtomicFile.makeDirectory(folder + "/a/b")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    func testAFailedWriteKeepsTheOldFileAndNamesTheReason() throws {
        let url = URL(fileURLWithPath: folder + "/a/b/file.bin")
        try AtomicFile.write(Data([1, 2, 3]), to: url)
        XCTAssertThrowsError(try AtomicFile.write(Data([4]), to: URL(fileURLWithPath: folder + "/none/file.bin"))) {
            XCTAssertEqual("\($0)", "cannot write \(self.folder!)/none/file.bin: its folder does not exist; the file there before, if any, is unchanged")
        }
        // A file-size limit of 1 kB (SIGXFSZ ignored): the write fails part-way, as on a full disk.
        var old = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        let oldHandler = signal(SIGXFSZ, SIG_IGN)
        var limit = rlimit(rlim_cur: 1024, rlim_max: old.rlim_max)
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit)
        let failure = Result { try AtomicFile.write(Data(count: 5000), to: url) }
        let appended = Result { try AtomicFile.append(Data(count: 5000), to: url) }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        signal(SIGXFSZ, oldHandler)
        XCTAssertThrowsError(try failure.get()) { XCTAssertTrue("\($0)".contains("file.bin: the file would exceed the size this process may write"), "\($0)") }
        XCTAssertThrowsError(try appended.get())
        XCTAssertEqual(try Data(contentsOf: url), Data([1, 2, 3]), "the old file, whole, and no partial append")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder + "/a/b"), ["file.bin"], "no temporary file")
        try AtomicFile.append(Data([9]), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data([1, 2, 3, 9]))
    }

    func testTemporaryNames() {
        XCTAssertTrue(AtomicFile.isTemporary(AtomicFile.temporaryName(for: "last.safetensors")))
        XCTAssertTrue(AtomicFile.isTemporary(".metrics.jsonl.123.tmp"))
        for name in [".keep.tmp", "last.safetensors", "x.1.tmp", ".x.12a.tmp"] { XCTAssertFalse(AtomicFile.isTemporary(name), name) }
    }

    func testMakeDirectoryNamesAFileInTheWay() throws {
        FileManager.default.createFile(atPath: folder + "/a/plain", contents: Data([1]))
        XCTAssertThrowsError(try AtomicFile.makeDirectory(folder + "/a/plain/c")) {
            XCTAssertEqual("\($0)", "cannot write \(self.folder!)/a/plain: a file of that name is in the way; the file there before, if any, is unchanged")
        }
        XCTAssertNoThrow(try AtomicFile.makeDirectory(folder + "/a/b"), "an existing folder is fine")
    }
}
