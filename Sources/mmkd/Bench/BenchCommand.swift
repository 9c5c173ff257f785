import ArgumentParser
import Distillation
import Engine
import Foundation
import Models

/// `mmkd bench SUITE`: times Swift against PyTorch 1.13 on the same shapes in one invocation.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark suites (release build): Swift next to PyTorch when python3-torch is installed.",
        subcommands: [KernelsBench.self, TrainBench.self, DistillBench.self])
}

/// Options every bench suite shares.
struct BenchOptions: ParsableArguments {
    @Option(help: "Write the results as JSON to this file (a list of {name, swift_median_s, torch_median_s, speedup}).")
    var json: String?

    @Option(help: "Timed repetitions per case and round (after warm-up); the median over all rounds is reported.")
    var repeats: Int = 10

    @Option(help: "Rounds, to even out a noisy machine: each times every case's Swift and PyTorch sides back to back (kernels, train) or the Swift suite and then the PyTorch suite (distill).")
    var rounds: Int = 3

    @Flag(help: "Do not run the PyTorch comparator even when it is available.")
    var noTorch = false

    @Option(help: "Run only the cases whose name contains this text.")
    var filter: String?

    @Option(help: "Convolution layouts: 'library' (oneDNN picks blocked layouts, reorders at the edges) or 'plain' (NCHW throughout).")
    var convLayout: String = "library"

    @Option(help: "Python interpreter that has PyTorch (Debian's python3-torch lives under /usr/bin/python3).")
    var python: String = "/usr/bin/python3"

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1, got \(rounds)") }
        guard ["library", "plain"].contains(convLayout) else {
            throw ValidationError("--conv-layout must be 'library' or 'plain', got '\(convLayout)'")
        }
    }

    /// The PyTorch comparator these options ask for, if any.
    func comparator(script: String) -> TorchComparator? {
        noTorch ? nil : TorchComparator(python: python, script: script)
    }

    /// Applies the engine settings these options choose.
    func configureEngine() {
        ConvolutionKernels.letLibraryChooseLayout = convLayout == "library"
    }

    /// Runs the kernel-comparator `cases` (those `--filter` keeps), prints the table and writes the
    /// JSON file when asked.
    func runKernelCases(_ cases: [BenchCase]) throws {
        configureEngine()
        let results = BenchRunner(repeats: repeats, rounds: rounds, interleaved: true)
            .run(cases.filter { c in filter.map { c.name.contains($0) } ?? true }, torch: comparator(script: "bench_kernels_torch.py"))
        BenchReport.print(results)
        if let json { try BenchReport.write(results, to: json) }
    }
}

struct KernelsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Convolution (forward, backward-data, backward-weights), batch norm and a small-ResNet training step at batch 64.")

    @OptionGroup var options: BenchOptions

    @Option(name: .customLong("arch"), help: ArgumentHelp(
        "Instead of the fixed suite: every distinct convolution (three passes and the meta step's second-order path) and channel shuffle of these architectures (repeatable; 'table-one' for the eight of Table I's pairs).",
        valueName: "arch"))
    var archs: [String] = []

    func validate() throws {
        for a in archs where a != "table-one" && (!ModelZoo.allNames.contains(a) || ModelZoo.imageNetNames.contains(a)) {
            throw ValidationError("--arch: '\(a)' is not a CIFAR architecture of the zoo (see `mmkd models`) or 'table-one'")
        }
    }

    func run() throws {
        guard !archs.isEmpty else { return try options.runKernelCases(KernelBenchCases.all) }
        try options.runKernelCases(ZooKernelBenchCases.cases(archs.flatMap { $0 == "table-one" ? ZooKernelBenchCases.tableOne : [$0] }))
    }
}

struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "One training step (forward, cross-entropy, backward, SGD with Nesterov momentum) at batch 64, 100 classes, 32×32.")

    @OptionGroup var options: BenchOptions

    @Option(name: .customLong("arch"), help: "Architecture (repeatable; default resnet8, resnet20, resnet8x4, vgg8).")
    var archs: [String] = []

    func validate() throws {
        for a in archs where !ModelZoo.allNames.contains(a) { throw ValidationError("--arch: unknown architecture '\(a)'") }
    }

    func run() throws {
        try options.runKernelCases((archs.isEmpty ? ["resnet8", "resnet20", "resnet8x4", "vgg8"] : archs).map(KernelBenchCases.trainStep))
    }
}

struct DistillBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "The MMKD iteration at batch 64, 100 classes, 32×32: ordinary step, meta step, and the amortised five-iteration period.",
        discussion: """
        Configurations: paper (3 × resnet32x4 → resnet8x4), paper-vgg (3 × vgg13 → vgg8), small (3 × resnet20 → resnet8), \
        or TEACHER:STUDENT for any two CIFAR architectures of the zoo (three teachers of the first), e.g. the pairs of Table I: \
        vgg13:vgg8, resnet32x4:MobileNetV2, resnet32x4:vgg8, wrn_40_2:MobileNetV2, wrn_40_2:wrn_40_1, resnet20x4:ShuffleV1. \
        The period is five ordinary steps and one meta step (meta every 5 iterations); its images/s is 5·64 / period. \
        Peak memory is each process's maximum resident set size (run one configuration per invocation to compare them). \
        The PyTorch side (scripts/bench_distill_torch.py) is the official code's step.
        """)

    @OptionGroup var options: BenchOptions

    @Option(help: "Configuration: paper, paper-vgg, small or TEACHER:STUDENT.") var config: String = "small"
    @Option(help: "Hypergradient of the Swift meta step: exact or first-order.") var hypergradient: HypergradientMode = .exact
    @Flag(help: "Exact hypergradient: keep the look-ahead graphs for the replay instead of recomputing them.") var keepReplayGraphs = false

    func validate() throws {
        guard DistillBenchCases.pair(config) != nil else {
            throw ValidationError("--config must be paper, paper-vgg, small or TEACHER:STUDENT (two CIFAR architectures of the zoo), got '\(config)'")
        }
    }

    func run() throws {
        options.configureEngine()
        let cases = DistillBenchCases.cases(config: config, hypergradient: hypergradient, keepGraphs: keepReplayGraphs)
            .filter { c in options.filter.map { c.name.contains($0) } ?? true }
        guard cases.count == 2 else {
            BenchReport.print(BenchRunner(repeats: options.repeats, rounds: options.rounds, warmup: 1)
                .run(cases, torch: options.comparator(script: "bench_distill_torch.py")))
            return
        }
        var results = BenchRunner(repeats: options.repeats, rounds: options.rounds, warmup: 1)
            .run(cases, torch: options.comparator(script: "bench_distill_torch.py"))
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let swiftPeak = Double(usage.ru_maxrss) * 1024
        let torchPeak = results.first?.torchExtras["peak_rss_bytes \(config)"]?.max()
        // The five-iteration period from each side's medians.
        var period = BenchResult(name: "distill \(config) period (5 ordinary + 1 meta)", flops: nil)
        period.swiftTimes = [5 * results[0].swiftMedian + results[1].swiftMedian]
        if let o = results[0].torchMedian, let m = results[1].torchMedian { period.torchTimes = [5 * o + m] }
        results.append(period)
        for i in results.indices {
            results[i].extras["swift_peak_rss_bytes"] = swiftPeak
            if let torchPeak { results[i].extras["torch_peak_rss_bytes"] = torchPeak }
        }
        results[2].extras["swift_images_per_s"] = 5 * Double(DistillBenchCases.batch) / period.swiftMedian
        if let t = period.torchMedian { results[2].extras["torch_images_per_s"] = 5 * Double(DistillBenchCases.batch) / t }
        let traffic = DistillBenchCases.lastWorkload?.traffic ?? [:]
        if let replicas = ParallelJob.replicas {
            for (i, kind) in ["ordinary", "meta"].enumerated() {
                guard let t = traffic[kind], t.steps > 0 else { continue }
                results[i].extras["processes"] = Double(replicas.size)
                results[i].extras["sent_bytes_per_step"] = Double(t.bytes) / Double(t.steps)
                results[i].extras["mpi_seconds_per_step"] = t.seconds / Double(t.steps)
            }
        }
        guard ParallelJob.isWriter else { return }
        BenchReport.print(results)
        if let replicas = ParallelJob.replicas {
            for kind in ["ordinary", "meta"] {
                guard let t = traffic[kind], t.steps > 0 else { continue }
                print(String(format: "%d processes, %@ step: %.2f MB sent per step by rank 0, %.1f ms per step in MPI calls (waiting included)",
                             replicas.size, kind, Double(t.bytes) / Double(t.steps) / 1e6, 1e3 * t.seconds / Double(t.steps)))
            }
        }
        print(String(format: "amortised: swift %.1f images/s%@; peak RSS swift %.0f MB%@", 5 * Double(DistillBenchCases.batch) / period.swiftMedian,
                     period.torchMedian.map { String(format: ", torch %.1f images/s", 5 * Double(DistillBenchCases.batch) / $0) } ?? "",
                     swiftPeak / 1e6, torchPeak.map { String(format: ", torch %.0f MB", $0 / 1e6) } ?? ""))
        if let path = options.json { try BenchReport.write(results, to: path) }
    }
}
