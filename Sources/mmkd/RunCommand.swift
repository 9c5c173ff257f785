import ArgumentParser
import Distillation
import Experiments
import Foundation

/// `mmkd run`: every cell of an experiment file, skipping finished ones and resuming interrupted ones.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run an experiment (YAML): teachers, teacher–student pairs, methods, seeds; resumable at any point.",
        discussion: """
        Cells run in order (teachers to train, then per pair and seed each method). A finished cell (its result.json \
        exists) is skipped; an interrupted one resumes from its last finished epoch with the same numbers as an \
        uninterrupted run. Stop it at any time and start it again. Writes OUTPUT/experiment.json, one run directory \
        per cell, and at the end OUTPUT/report.md and results.csv (as `mmkd report`). See examples/*.yaml.
        """)

    @Argument(help: "The experiment file (YAML).") var experiment: String
    @Option(help: "Output folder (default: the file's `output`, else runs/NAME).") var output: String?
    @Flag(help: "Only list the cells and whether each has finished.") var dryRun = false

    func run() throws {
        let spec = try ExperimentSpec.load(experiment)
        let runner = try ExperimentRunner(spec: spec, output: output)
        let cells = spec.cells()
        print("experiment \(spec.name): \(cells.count) runs (\(spec.pairs.count) pairs × \(spec.methods.count) methods × \(spec.seeds.count) seeds\(cells.count > spec.pairs.count * spec.methods.count * spec.seeds.count ? " + teachers" : "")) → \(runner.output.path)")
        if dryRun {
            for cell in cells { print("  \(runner.result(of: cell) == nil ? "todo" : "done")  \(cell.label)  (\(cell.path))") }
            return
        }
        try runner.run()
        let report = try ExperimentReport(output: runner.output.path)
        let files = try report.write()
        print("all runs finished; report: \(files.map(\.path).joined(separator: ", "))")
    }
}

/// `mmkd report`: aggregates an experiment's finished cells into tables.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Aggregate an experiment's runs: top-1 mean ± std over seeds (best and last epoch), ARI; Markdown and CSV.")

    @Argument(help: "The experiment's output folder (written by `mmkd run`).") var runDir: String

    func run() throws {
        let report = try ExperimentReport(output: runDir)
        let files = try report.write()
        print(report.markdown())
        print("\(report.finished) of \(report.planned) runs finished; wrote \(files.map(\.path).joined(separator: ", "))")
    }
}
