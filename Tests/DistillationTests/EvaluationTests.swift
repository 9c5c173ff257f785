import Distillation
import Engine
import XCTest

/// Top-k accuracy by the target's rank in PyTorch's `topk` order: NaN first, ties in class order;
/// a NaN target is wrong. (Before, a sample counted as correct when no logit beat its target's, so
/// a model with equal or NaN logits scored 100%.)
final class EvaluationTests: XCTestCase {
    func testTopKOnDistinctLogits() {
        let logits = Tensor([0.1, 0.9, 0.3, 0.2, 0.5, 0.4, 0.8, 0.7, 0.6, 0.0,
                             0.1, 0.9, 0.3, 0.2, 0.5, 0.4, 0.8, 0.7, 0.6, 0.0], shape: [2, 10])
        // Class 1 ranks first; class 4 (0.5) ranks fifth, after 0.9, 0.8, 0.7, 0.6.
        XCTAssertEqual(Evaluation.correct(logits, [1, 4]).top1, 1)
        XCTAssertEqual(Evaluation.correct(logits, [1, 4]).top5, 2)
        XCTAssertEqual(Evaluation.correct(logits, [5, 9]).top5, 0, "0.4 ranks sixth, 0.0 last")
    }

    func testTiesKeepClassOrder() {
        let equal = Tensor(Array(repeating: 0.25, count: 30), shape: [3, 10])
        XCTAssertEqual(Evaluation.correct(equal, [0, 3, 7]).top1, 1, "only class 0 is first among equals")
        XCTAssertEqual(Evaluation.correct(equal, [0, 3, 7]).top5, 2, "classes 0 and 3 are among the first five")
        let pair = Tensor([2, 5, 5, 1], shape: [1, 4])
        XCTAssertEqual(Evaluation.correct(pair, [1]).top1, 1)
        XCTAssertEqual(Evaluation.correct(pair, [2]).top1, 0, "the tie goes to the lower class")
    }

    func testNaNIsNeverCorrectAndRanksFirst() {
        let nan = Float.nan
        let allNaN = Tensor(Array(repeating: nan, count: 20), shape: [2, 10])
        XCTAssertTrue(Evaluation.correct(allNaN, [0, 5]) == (0, 0), "a NaN target is wrong at every k")
        let oneNaN = Tensor([nan, 5, 1, 0, -1, -2, -3, -4], shape: [1, 8])
        XCTAssertEqual(Evaluation.correct(oneNaN, [1]).top1, 0, "a NaN ranks above the largest number")
        XCTAssertEqual(Evaluation.correct(oneNaN, [1]).top5, 1)
        XCTAssertEqual(Evaluation.correct(oneNaN, [0]).top5, 0)
        let infinite = Tensor([-.infinity, .infinity, 3], shape: [1, 3])
        XCTAssertEqual(Evaluation.correct(infinite, [1]).top1, 1, "infinities are numbers")
        XCTAssertEqual(Evaluation.correct(infinite, [0]).top1, 0)
    }
}

/// One process at a time writes a run; run names stay inside the runs directory.
final class RunDirectoryTests: XCTestCase {
    func testASecondHoldOnARunFailsNamingTheHolder() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mmkd-lock-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var first: RunDirectory? = try RunDirectory(path, exclusive: true)
        XCTAssertNotNil(first?.lock)
        XCTAssertThrowsError(try RunDirectory(path, exclusive: true)) { error in
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("in use by process \(getpid())"), "\(error)")
        }
        XCTAssertNoThrow(try RunDirectory(path), "readers take no hold")
        first = nil
        XCTAssertNoThrow(try RunDirectory(path, exclusive: true), "the hold ends with its holder")
    }

    func testOpeningARunRemovesTheTemporaryFilesOfAKilledWriter() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mmkd-orphans-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for name in [".last.safetensors.4242.tmp", ".metrics.jsonl.7.tmp", ".keep.tmp", "notes.tmp", ".lock"] {
            FileManager.default.createFile(atPath: path + "/" + name, contents: Data([1]))
        }
        _ = try RunDirectory(path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/.last.safetensors.4242.tmp"), "a reader removes nothing")
        _ = try RunDirectory(path, exclusive: true)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path).sorted(), [".keep.tmp", ".lock", "notes.tmp"])
    }

    func testRunNamesAreOneFolder() {
        for bad in ["", ".", "..", "../../escape", "a/b", "/abs"] { XCTAssertNotNil(RunDirectory.problem(withName: bad), bad) }
        for good in ["kd-resnet8-seed1", "run.2", "..hidden"] { XCTAssertNil(RunDirectory.problem(withName: good), good) }
    }
}
