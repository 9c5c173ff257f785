import Foundation
import Fuzzing
import XCTest

/// Every committed fuzzing input, seeds and fixed findings alike, goes through its parser in the test
/// suite, so that a fix stays fixed without a fuzzing build.
final class CorpusReplayTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func inputs(_ folder: String) throws -> [(harness: ParserHarness, path: String, bytes: [UInt8])] {
        let root = Self.repository.appendingPathComponent(folder).path
        guard FileManager.default.fileExists(atPath: root) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: root).sorted().flatMap { name -> [(ParserHarness, String, [UInt8])] in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + name, isDirectory: &isDirectory), isDirectory.boolValue else { return [] }
            let harness = try XCTUnwrap(ParserHarness.named(harness: name), "\(folder)/\(name) is not a harness's name")
            return try FileManager.default.contentsOfDirectory(atPath: root + "/" + name).sorted().map { file in
                let path = root + "/" + name + "/" + file
                return (harness, path, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
            }
        }
    }

    func testEveryHarnessHasSeedsAndEverySeedReads() throws {
        let seeds = try inputs("Fuzz/Corpus")
        XCTAssertEqual(Set(seeds.map(\.harness.name)), Set(ParserHarness.all.map(\.name)), "each harness has a seed folder")
        for seed in seeds {
            let outcome = seed.harness.run(seed.bytes)
            // The example experiments name teachers' checkpoints that exist only after their training.
            if seed.harness.name == "yaml" && outcome?.contains("no checkpoint at") == true { continue }
            XCTAssertNil(outcome, "the seed \(seed.path) is a valid file")
        }
    }

    func testTheCommittedSeedsAreWhatTheGeneratorWrites() throws {
        for (name, files) in try SeedFiles.corpus() {
            for (file, bytes) in files {
                let path = Self.repository.appendingPathComponent("Fuzz/Corpus/\(name)/\(file)").path
                XCTAssertTrue(FileManager.default.contents(atPath: path).map { [UInt8]($0) } == bytes,
                               "\(path) differs from `mmkd-fuzz seeds`; run scripts/make_fuzz_seeds.sh")
            }
        }
    }

    func testFixedFindingsEndInErrorsNamingTheFile() throws {
        for finding in try inputs("Fuzz/Regressions") {
            if let message = finding.harness.run(finding.bytes) {
                XCTAssertTrue(message.contains("fuzz-input"), "\(finding.path): \(message)")
            }
        }
    }
}
