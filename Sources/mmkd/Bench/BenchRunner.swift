import Dispatch
import Engine
import Foundation

/// One benchmark case: a name, a description for the PyTorch comparator, and the Swift work.
struct BenchCase {
    let name: String
    /// JSON-encodable description the comparator script reproduces (`kind` plus parameters).
    let spec: [String: Any]
    /// Floating-point operations of one run, when meaningful (for GFLOP/s).
    let flops: Double?
    /// Prepares inputs once and returns the closure to time.
    let prepare: () -> () -> Void
}

/// One measured case: every timed run of each side, pooled over rounds.
struct BenchResult {
    let name: String
    var swiftTimes: [Double] = []
    var torchTimes: [Double] = []
    let flops: Double?
    /// Other timing lists the comparator returned (e.g. its peak memory), by name.
    var torchExtras: [String: [Double]] = [:]
    /// Extra fields for the JSON entry.
    var extras: [String: Double] = [:]
    var swiftMedian: Double { median(swiftTimes) }
    var torchMedian: Double? { torchTimes.isEmpty ? nil : median(torchTimes) }
    var speedup: Double? { torchMedian.map { $0 / swiftMedian } }
}

/// Runs a suite in rounds, alternating Swift and PyTorch, so that slow drifts of a shared machine
/// hit both sides alike; medians are taken over all rounds' runs.
struct BenchRunner {
    let repeats: Int
    let rounds: Int
    var warmup = 3

    func run(_ cases: [BenchCase], torch: TorchComparator?) -> [BenchResult] {
        var results = cases.map { BenchResult(name: $0.name, flops: $0.flops) }
        var torchAvailable = torch != nil
        for round in 1...rounds {
            FileHandle.standardError.write("round \(round)/\(rounds)\n".data(using: .utf8)!)
            for (i, c) in cases.enumerated() {
                let body = c.prepare()
                for _ in 0..<warmup { body() }
                for _ in 0..<repeats {
                    let start = DispatchTime.now().uptimeNanoseconds
                    body()
                    results[i].swiftTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
                FileHandle.standardError.write("  swift \(c.name): \(String(format: "%.3f ms", median(results[i].swiftTimes) * 1e3))\n".data(using: .utf8)!)
            }
            guard torchAvailable, let torch else { continue }
            switch torch.run(cases.map(\.spec), repeats: repeats) {
            case .success(let times):
                for i in results.indices { results[i].torchTimes += times[results[i].name] ?? [] }
                let known = Set(results.map(\.name))
                for (name, values) in times where !known.contains(name) {
                    for i in results.indices { results[i].torchExtras[name, default: []] += values }
                }
            case .failure(let reason):
                print("PyTorch comparator not run: \(reason)")
                torchAvailable = false
            }
        }
        return results
    }
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Runs a PyTorch script from `scripts/` on the same case specs, returning median seconds by name.
struct TorchComparator {
    let python: String
    let script: String

    enum Failure: Error, CustomStringConvertible {
        case unavailable(String)
        case failed(String)
        var description: String {
            switch self { case .unavailable(let s), .failed(let s): return s }
        }
    }

    /// The script's path: `scripts/NAME` under the current directory or above the executable.
    func locateScript() -> String? {
        var candidates = [FileManager.default.currentDirectoryPath]
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 { candidates.append(dir.path); dir = dir.deletingLastPathComponent() }
        return candidates.map { $0 + "/scripts/" + script }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Times every case; returns each case's timed runs (seconds) by name.
    func run(_ specs: [[String: Any]], repeats: Int) -> Result<[String: [Double]], Failure> {
        guard FileManager.default.isExecutableFile(atPath: python) else { return .failure(.unavailable("\(python) not found")) }
        guard let path = locateScript() else { return .failure(.unavailable("scripts/\(script) not found near the working directory or executable")) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mmkd-bench-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let specFile = dir.appendingPathComponent("spec.json"), outFile = dir.appendingPathComponent("out.json")
        do {
            try JSONSerialization.data(withJSONObject: ["repeats": repeats, "cases": specs]).write(to: specFile)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [path, specFile.path, outFile.path]
            // The comparator's OpenBLAS (PyTorch's linear layers) runs the kernel set the engine's does:
            // where OpenBLAS falls back to Prescott for an unknown CPU model, both sides get the
            // CPU's own (see `BLASCore`), so the comparison is of the code, not of that fallback.
            if BLASCore.replaced != nil {
                var environment = ProcessInfo.processInfo.environment
                environment["OPENBLAS_CORETYPE"] = BLASCore.name
                process.environment = environment
            }
            try process.run()
            process.waitUntilExit()
            if process.terminationStatus == 3 { return .failure(.unavailable("PyTorch is not installed for \(python) (apt-get install python3-torch)")) }
            guard process.terminationStatus == 0 else { return .failure(.failed("\(path) exited with status \(process.terminationStatus)")) }
            let decoded = try JSONSerialization.jsonObject(with: Data(contentsOf: outFile)) as? [String: [Double]]
            return decoded.map { .success($0) } ?? .failure(.failed("\(outFile.path) is not a JSON object of timing lists"))
        } catch {
            return .failure(.failed("running \(path): \(error)"))
        }
    }
}

/// Printing and writing bench results in the project's one bench format.
enum BenchReport {
    static func print(_ results: [BenchResult]) {
        let width = max(28, results.map(\.name.count).max() ?? 0)
        Swift.print("\("case".padding(toLength: width, withPad: " ", startingAt: 0))  swift ms   torch ms   speedup  swift GFLOP/s")
        for r in results {
            let torch = r.torchMedian.map { String(format: "%9.3f", $0 * 1e3) } ?? "        –"
            let speed = r.speedup.map { String(format: "%8.2f×", $0) } ?? "        –"
            let gflops = r.flops.map { String(format: "%9.1f", $0 / r.swiftMedian / 1e9) } ?? ""
            Swift.print("\(r.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(String(format: "%8.3f", r.swiftMedian * 1e3))  \(torch)  \(speed)  \(gflops)")
        }
        _ = EngineThreads.configure
        let chosen = BLASCore.replaced.map { " (both sides; OpenBLAS alone chose \($0) on this CPU)" } ?? ""
        Swift.print("swift: \(Parallel.workers) threads; OpenBLAS kernels \(BLASCore.name)\(chosen)")
    }

    /// Writes atomically (temporary file, then rename).
    static func write(_ results: [BenchResult], to path: String) throws {
        let entries: [[String: Any]] = results.map { r in
            var e: [String: Any] = ["name": r.name, "swift_median_s": r.swiftMedian, "swift_runs": r.swiftTimes.count,
                                    "torch_median_s": r.torchMedian ?? NSNull(), "torch_runs": r.torchTimes.count,
                                    "speedup": r.speedup ?? NSNull()]
            if let f = r.flops { e["flops"] = f }
            for (k, v) in r.extras { e[k] = v }
            return e
        }
        let data = try JSONSerialization.data(withJSONObject: entries, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: URL(fileURLWithPath: path))
        Swift.print("wrote \(path)")
    }
}
