import Foundation
import XCTest

/// `mmkd bench kernels` against a comparator that speaks the serving protocol of
/// `scripts/bench_kernels_torch.py --serve` (a stand-in interpreter, so no PyTorch is needed): each
/// case's comparator times land in the table, and a comparator that is missing, fails or replies
/// nonsense is reported by name while the Swift side still runs.
final class BenchComparatorTests: MMKDCommandTestCase {
    /// An executable "interpreter" at `name` in the test's folder running `body` (bash); it is
    /// called as `INTERPRETER SCRIPT --serve`.
    func interpreter(_ name: String, _ body: String) throws -> String {
        let path = folder + "/" + name
        try ("#!/bin/bash\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    /// `bench kernels` on resnet8's forward convolutions, two rounds of two runs, with `python`.
    func bench(_ python: String) throws -> (status: Int32, out: String, err: String) {
        try mmkd(["bench", "kernels", "--arch", "resnet8", "--filter", "conv fwd", "--rounds", "2", "--repeats", "2", "--python", python])
    }

    func testEachCaseIsTimedByTheServingComparator() throws {
        // Replies 0.25 s for every timed run, after the ready line; logs each request.
        let python = try interpreter("serving", """
            [ "$2" = "--serve" ] || exit 9
            echo '{"ready": "stand-in"}'
            while IFS= read -r line; do
                echo "$line" >> "\(folder!)/requests.log"
                echo '{"name": "any", "times": [0.25, 0.25]}'
            done
            """)
        let r = try bench(python)
        XCTAssertEqual(r.status, 0, r.err + r.out)
        let rows = r.out.split(separator: "\n").filter { $0.hasPrefix("conv fwd resnet8") }
        XCTAssertFalse(rows.isEmpty, r.out)
        for row in rows { XCTAssertTrue(row.contains("250.000"), "the comparator's median (250 ms) in: \(row)") }
        // Two rounds: each case asked for twice, two runs each time, described as the Swift case.
        let requests = try String(contentsOfFile: folder + "/requests.log", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(requests.count, 2 * rows.count)
        for request in requests {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(request.utf8)) as? [String: Any])
            XCTAssertEqual(object["repeats"] as? Int, 2)
            let spec = try XCTUnwrap(object["case"] as? [String: Any])
            XCTAssertEqual(spec["kind"] as? String, "conv_fwd")
            XCTAssertEqual(spec["batch"] as? Int, 64)
        }
        XCTAssertTrue(r.err.contains("torch 250.000 ms"), r.err)
    }

    func testAComparatorThatCannotRunIsReportedAndTheSwiftSideStillRuns() throws {
        let cases: [(String, String, String)] = [
            ("without-torch", "exit 3", "PyTorch is not installed for"),
            ("crashing", "echo '{\"ready\": \"x\"}'; read -r line; exit 7", "exited with status 7"),
            ("garbled", "echo '{\"ready\": \"x\"}'; while read -r line; do echo 'not json'; done", "the comparator replied not json"),
            ("unready", "echo 'hello'", "the comparator began with hello"),
        ]
        for (name, body, message) in cases {
            let r = try bench(try interpreter(name, body))
            XCTAssertEqual(r.status, 0, "\(name): " + r.err + r.out)
            XCTAssertTrue(r.out.contains("PyTorch comparator not run: ") && r.out.contains(message), "\(name): expected '\(message)' in:\n\(r.out)")
            let rows = r.out.split(separator: "\n").filter { $0.hasPrefix("conv fwd resnet8") }
            XCTAssertFalse(rows.isEmpty, "\(name): the Swift side's rows in:\n\(r.out)")
            for row in rows { XCTAssertTrue(row.contains("–"), "\(name): no comparator time in: \(row)") }
        }
        XCTAssertTrue(try bench(folder + "/nowhere").out.contains("PyTorch comparator not run: \(folder!)/nowhere not found"))
    }
}

/// `MMKD_PROFILE_MEMORY=1`: at exit, the stacks that held the most at the high-water mark, named.
final class MemoryProfileReportTests: MMKDCommandTestCase {
    func testTheReportNamesTheStacksHoldingTheMemory() throws {
        let p = try process(["bench", "kernels", "--arch", "resnet8", "--filter", "conv fwd resnet8 3x3 16>16", "--no-torch", "--rounds", "1", "--repeats", "1"])
        p.environment?["MMKD_PROFILE_MEMORY"] = "1"
        let (status, text) = try runCombined(p)
        XCTAssertEqual(status, 0, text)
        let report = try XCTUnwrap(text.range(of: "memory: ").map { text[$0.lowerBound...] }, text)
        XCTAssertTrue(report.contains("MB live at the high-water mark"), String(report))
        // The case's input, weight and output buffers: allocated under the bench case's code,
        // which the executable does not export (named through addr2line).
        XCTAssertTrue(report.contains("KernelBenchCases"), String(report))
    }
}
