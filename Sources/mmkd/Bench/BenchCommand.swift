import ArgumentParser
import Engine
import Foundation

/// `mmkd bench SUITE`: times Swift against PyTorch 1.13 on the same shapes in one invocation.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark suites (release build): Swift next to PyTorch when python3-torch is installed.",
        subcommands: [KernelsBench.self])
}

/// Options every bench suite shares.
struct BenchOptions: ParsableArguments {
    @Option(help: "Write the results as JSON to this file (a list of {name, swift_median_s, torch_median_s, speedup}).")
    var json: String?

    @Option(help: "Timed repetitions per case (after warm-up); the median is reported.")
    var repeats: Int = 15

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
        guard ["library", "plain"].contains(convLayout) else {
            throw ValidationError("--conv-layout must be 'library' or 'plain', got '\(convLayout)'")
        }
    }

    /// Applies the engine settings these options choose.
    func configureEngine() {
        ConvolutionKernels.letLibraryChooseLayout = convLayout == "library"
    }
}

struct KernelsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Convolution (forward, backward-data, backward-weights), batch norm and a small-ResNet training step at batch 64.")

    @OptionGroup var options: BenchOptions

    func run() throws {
        options.configureEngine()
        let cases = KernelBenchCases.all.filter { c in options.filter.map { c.name.contains($0) } ?? true }
        var results = BenchRunner(repeats: options.repeats).run(cases)
        if !options.noTorch {
            switch TorchComparator(python: options.python, script: "bench_kernels_torch.py").run(cases.map(\.spec), repeats: options.repeats) {
            case .success(let torch):
                for i in results.indices { results[i].torchMedian = torch[results[i].name] }
            case .failure(let reason):
                print("PyTorch comparator not run: \(reason)")
            }
        }
        BenchReport.print(results)
        if let path = options.json { try BenchReport.write(results, to: path) }
    }
}
