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
/// hit both sides alike; medians are taken over all rounds' runs. By default each round runs the
/// Swift side of every case, then the comparator's; `interleaved` times each case's two sides back
/// to back instead (the comparator serving one case at a time), in alternating order.
struct BenchRunner {
    let repeats: Int
    let rounds: Int
    var warmup = 3
    /// Time each case's two sides back to back. This VM's speed drifts by up to a third within
    /// minutes (one oneDNN convolution ran 14 ms and 20 ms in the same quarter hour), longer than
    /// one side of the kernel suite takes, which otherwise decides many ratios by chance.
    var interleaved = false

    func run(_ cases: [BenchCase], torch: TorchComparator?) -> [BenchResult] {
        guard interleaved, let torch else { return runBySuite(cases, torch: torch) }
        switch torch.serve() {
        case .success(let server):
            defer { server.close() }
            return runInterleaved(cases, server: server)
        case .failure(let reason):
            print("PyTorch comparator not run: \(reason)")
            return runBySuite(cases, torch: nil)
        }
    }

    /// Each round: every case's Swift side, then the comparator's whole suite.
    private func runBySuite(_ cases: [BenchCase], torch: TorchComparator?) -> [BenchResult] {
        var results = cases.map { BenchResult(name: $0.name, flops: $0.flops) }
        var torchAvailable = torch != nil
        for round in 1...rounds {
            log("round \(round)/\(rounds)")
            for (i, c) in cases.enumerated() {
                results[i].swiftTimes += timeSwift(c)
                log("  swift \(c.name): \(String(format: "%.3f ms", median(results[i].swiftTimes) * 1e3))")
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

    /// Each round: every case's two sides back to back, PyTorch first in every other case and round,
    /// so that neither side is always the one timed right after the other.
    private func runInterleaved(_ cases: [BenchCase], server: TorchServer) -> [BenchResult] {
        var results = cases.map { BenchResult(name: $0.name, flops: $0.flops) }
        var server: TorchServer? = server
        for round in 1...rounds {
            log("round \(round)/\(rounds)")
            for (i, c) in cases.enumerated() {
                let torchFirst = (round + i) % 2 == 0
                func torchSide() {
                    guard let s = server else { return }
                    switch s.time(c.spec, repeats: repeats) {
                    case .success(let times): results[i].torchTimes += times
                    case .failure(let reason):
                        print("PyTorch comparator not run: \(reason)")
                        server = nil
                    }
                }
                if torchFirst { torchSide(); settle() }
                results[i].swiftTimes += timeSwift(c)
                if !torchFirst, server != nil { settle(); torchSide() }
                let torch = results[i].torchMedian.map { String(format: ", torch %.3f ms", $0 * 1e3) } ?? ""
                log("  \(c.name): swift \(String(format: "%.3f ms", results[i].swiftMedian * 1e3))\(torch)")
            }
        }
        return results
    }

    /// After one side's last parallel region its OpenMP threads spin before they sleep (libgomp's
    /// GOMP_SPINCOUNT: 300,000 pauses, about 15 ms on this CPU), taking a core from the other side
    /// if it started at once.
    private func settle() { usleep(30_000) }

    /// The timed runs of the Swift side of `c`, after `warmup` untimed ones.
    private func timeSwift(_ c: BenchCase) -> [Double] {
        let body = c.prepare()
        for _ in 0..<warmup { body() }
        return (0..<repeats).map { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
    }

    private func log(_ line: String) {
        FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
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

    /// A process running the script, its environment set as the comparison needs: the comparator's
    /// OpenBLAS (PyTorch's linear layers) runs the kernel set the engine's does. Where OpenBLAS
    /// falls back to Prescott for an unknown CPU model, both sides get the CPU's own (see
    /// `BLASCore`), so the comparison is of the code, not of that fallback.
    private func process(_ arguments: [String]) -> Result<Process, Failure> {
        guard FileManager.default.isExecutableFile(atPath: python) else { return .failure(.unavailable("\(python) not found")) }
        guard let path = locateScript() else { return .failure(.unavailable("scripts/\(script) not found near the working directory or executable")) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [path] + arguments
        if BLASCore.replaced != nil {
            var environment = ProcessInfo.processInfo.environment
            environment["OPENBLAS_CORETYPE"] = BLASCore.name
            process.environment = environment
        }
        return .success(process)
    }

    /// The failure a finished comparator process reports by its status.
    fileprivate static func failure(_ process: Process) -> Failure {
        process.terminationStatus == 3
            ? .unavailable("PyTorch is not installed for \(process.executableURL?.path ?? "python") (apt-get install python3-torch)")
            : .failed("\(process.arguments?.first ?? "the comparator") exited with status \(process.terminationStatus)")
    }

    /// Times every case; returns each case's timed runs (seconds) by name.
    func run(_ specs: [[String: Any]], repeats: Int) -> Result<[String: [Double]], Failure> {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mmkd-bench-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let specFile = dir.appendingPathComponent("spec.json"), outFile = dir.appendingPathComponent("out.json")
        let process: Process
        switch self.process([specFile.path, outFile.path]) {
        case .success(let p): process = p
        case .failure(let f): return .failure(f)
        }
        do {
            try JSONSerialization.data(withJSONObject: ["repeats": repeats, "cases": specs]).write(to: specFile)
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { return .failure(Self.failure(process)) }
            let decoded = try JSONSerialization.jsonObject(with: Data(contentsOf: outFile)) as? [String: [Double]]
            return decoded.map { .success($0) } ?? .failure(.failed("\(outFile.path) is not a JSON object of timing lists"))
        } catch {
            return .failure(.failed("running \(script): \(error)"))
        }
    }

    /// Starts the script's serving mode (`--serve`: one case per request), for timing each case's
    /// two sides back to back.
    func serve() -> Result<TorchServer, Failure> {
        switch process(["--serve"]) {
        case .failure(let f): return .failure(f)
        case .success(let process):
            let input = Pipe(), output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            // A comparator that dies must give a failure, not kill this process by SIGPIPE.
            signal(SIGPIPE, SIG_IGN)
            do { try process.run() } catch { return .failure(.failed("running \(script): \(error)")) }
            let server = TorchServer(process: process, requests: input.fileHandleForWriting, replies: output.fileHandleForReading)
            return server.waitUntilReady().map { server }
        }
    }
}

/// A running comparator in serving mode: each request times one case and returns its runs.
final class TorchServer {
    private let process: Process
    private let requests: FileHandle
    private let replies: FileHandle
    private var pending = Data()

    fileprivate init(process: Process, requests: FileHandle, replies: FileHandle) {
        self.process = process
        self.requests = requests
        self.replies = replies
    }

    /// Seconds of each of `repeats` timed runs of the case `spec` describes.
    func time(_ spec: [String: Any], repeats: Int) -> Result<[Double], TorchComparator.Failure> {
        do {
            var line = try JSONSerialization.data(withJSONObject: ["repeats": repeats, "case": spec])
            line.append(0x0A)
            try requests.write(contentsOf: line)
        } catch {
            return .failure(finished())
        }
        guard let reply = readLine() else { return .failure(finished()) }
        guard let object = try? JSONSerialization.jsonObject(with: reply) as? [String: Any], let times = object["times"] as? [Double],
              times.count == repeats else {
            return .failure(.failed("the comparator replied \(String(decoding: reply.prefix(200), as: UTF8.self)), expected {\"name\", \"times\": [\(repeats) numbers]}"))
        }
        return .success(times)
    }

    /// Waits for the comparator's first line, which it writes once PyTorch is imported (an import
    /// running next to a timed Swift case would slow it).
    fileprivate func waitUntilReady() -> Result<Void, TorchComparator.Failure> {
        guard let line = readLine() else { return .failure(finished()) }
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any], object["ready"] != nil else {
            close()
            return .failure(.failed("the comparator began with \(String(decoding: line.prefix(200), as: UTF8.self)), expected {\"ready\": version}"))
        }
        return .success(())
    }

    /// Ends the comparator (end of its input) and waits for it.
    func close() {
        try? requests.close()
        process.waitUntilExit()
    }

    /// The failure of a comparator whose pipe closed: its exit status says why.
    private func finished() -> TorchComparator.Failure {
        try? requests.close()
        process.waitUntilExit()
        return TorchComparator.failure(process)
    }

    /// The next reply line, nil at the end of the comparator's output.
    private func readLine() -> Data? {
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = pending[pending.startIndex..<newline]
                pending = Data(pending[(newline + 1)...])
                return Data(line)
            }
            let chunk = replies.availableData
            if chunk.isEmpty { return nil }
            pending.append(chunk)
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
