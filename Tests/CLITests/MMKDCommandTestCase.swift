import Foundation
import TestSupport
import XCTest

/// A test case that runs the `mmkd` executable built beside the test bundle in the test's folder
/// (holding a `TinyCIFAR` data set), as a user would.
class MMKDCommandTestCase: TinyCIFARTestCase {
    /// The `mmkd` built beside this test bundle.
    var executable: URL {
        get throws {
            let dir = Bundle.main.bundleURL
            for candidate in [dir, dir.deletingLastPathComponent()].map({ $0.appendingPathComponent("mmkd") })
            where FileManager.default.isExecutableFile(atPath: candidate.path) {
                return candidate
            }
            struct Missing: Error, CustomStringConvertible { let description: String }
            throw Missing(description: "no mmkd executable in \(dir.path); build it with `swift build --build-tests`")
        }
    }

    /// A process that will run `mmkd ARGS` (one engine thread) in the test's folder.
    func process(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = try executable
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        var environment = ProcessInfo.processInfo.environment
        environment["MMKD_THREADS"] = "1"
        process.environment = environment
        return process
    }

    /// Runs `mmkd ARGS`; returns the exit status and both streams.
    func mmkd(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let process = try process(arguments)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out; process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile(), errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    func assertFails(_ arguments: [String], saying text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try mmkd(arguments)
        XCTAssertNotEqual(r.status, 0, "mmkd \(arguments.joined(separator: " ")) should fail", file: file, line: line)
        XCTAssertTrue((r.err + r.out).contains(text), "mmkd \(arguments.joined(separator: " ")): expected '\(text)' in:\n\(r.err)\(r.out)", file: file, line: line)
    }

    /// Runs `process` with both its streams into one pipe; returns its status and what it wrote, in order.
    func runCombined(_ process: Process) throws -> (status: Int32, text: String) {
        let both = Pipe()
        process.standardOutput = both; process.standardError = both
        try process.run()
        let text = String(decoding: both.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
