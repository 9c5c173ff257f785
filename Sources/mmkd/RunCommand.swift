import ArgumentParser
import Datasets
import Distributed
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
    @Option(parsing: .unconditional, help: "Under mpirun: run cells on groups of this many processes at once (default: all processes on every cell in turn).")
    var ranksPerCell: Int?

    func validate() throws {
        if let ranksPerCell, ranksPerCell <= 0 { throw ValidationError("--ranks-per-cell must be positive, got \(ranksPerCell)") }
    }

    func run() throws {
        let spec = try ExperimentSpec.load(experiment)
        let world = ParallelJob.replicas
        let size = world?.size ?? 1, perCell = ranksPerCell ?? size
        guard size % perCell == 0 else {
            throw ValidationError("--ranks-per-cell \(perCell) does not divide the \(size) processes of this job into equal groups")
        }
        // The world itself, or this process's group of `perCell` consecutive ranks.
        let group = world.map { perCell == size ? $0 : $0.split(color: $0.rank / perCell, key: $0.rank) }
        let runner = try ExperimentRunner(spec: spec, output: output, world: world, cellGroup: group,
                                          groupIndex: (world?.rank ?? 0) / perCell, groupCount: size / perCell)
        let cells = spec.cells()
        guard ParallelJob.isWriter else {
            if !dryRun { try runner.run() }
            return
        }
        if size > 1 { print("\(size) processes: \(size / perCell) group\(size / perCell == 1 ? "" : "s") of \(perCell), each running its share of the cells") }
        print("experiment \(spec.name): \(cells.count) runs (\(spec.pairs.count) pairs × \(spec.methods.count) methods × \(spec.seeds.count) seeds\(cells.count > spec.pairs.count * spec.methods.count * spec.seeds.count ? " + teachers" : "")) → \(runner.output.path)")
        if dryRun {
            for cell in cells { print("  \(runner.result(of: cell) == nil ? "todo" : "done")  \(cell.label)  (\(cell.path))") }
            return
        }
        try runner.run()
        let report = try ExperimentReport(output: runner.output.path)
        let files = try report.write() + [try HTMLReport(report: report).write(gradcam: try report.writeGradCAMFigures(images: 6))]
        print("all runs finished; report: \(files.map(\.path).joined(separator: ", "))")
    }
}

/// `mmkd report`: aggregates an experiment's finished cells into tables.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Aggregate an experiment's runs: top-1 mean ± std over seeds (best and last epoch), ARI; Markdown, CSV and HTML.",
        discussion: """
        Writes RUN_DIR/report.md, results.csv and report.html (one self-contained file: accuracy curves, MMKD's learned \
        teacher weights, β sensitivity and ablations when the grid has them, Grad-CAM heat maps of the student alone, \
        the distilled students and a teacher; figures under RUN_DIR/figures/).
        """)

    @Argument(help: "The experiment's output folder (written by `mmkd run`).") var runDir: String
    @Option(help: "Test images in each pair's Grad-CAM figure (0: none).") var gradcamImages: Int = 6

    func validate() throws {
        guard gradcamImages >= 0 else { throw ValidationError("--gradcam-images must be ≥ 0, got \(gradcamImages)") }
    }

    func run() throws {
        let report = try ExperimentReport(output: runDir)
        let figures = gradcamImages > 0 ? try report.writeGradCAMFigures(images: gradcamImages) : [:]
        let files = try report.write() + [try HTMLReport(report: report).write(gradcam: figures)]
        print(report.markdown())
        print("\(report.finished) of \(report.planned) runs finished; wrote \(files.map(\.path).joined(separator: ", "))")
    }
}

/// `mmkd gradcam`: Grad-CAM heat maps of several networks on the same test images (PNG).
struct GradCAMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradcam",
        abstract: "Grad-CAM heat maps (true class, penultimate feature map) of networks on the same test images, as PNGs.",
        discussion: "Writes OUT/gradcam.png (a row per image: the image, then each network's heat map) and OUT/LABEL-testI.png per network and image.")

    @Option(name: .customLong("model"), help: "A network as LABEL=ARCH=CHECKPOINT (repeat for several).") var models: [String] = []
    @Option(help: "Data set as KIND:PATH (its test split is used).") var data: String
    @Option(help: "Number of test images (spread evenly over the split).") var images: Int = 6
    @Option(help: "Output folder.") var out: String = "gradcam"

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one --model LABEL=ARCH=CHECKPOINT") }
        guard images > 0 else { throw ValidationError("--images must be positive, got \(images)") }
        _ = try DatasetSpec(parsing: data)
    }

    func run() throws {
        let networks = try models.map(GradCAMFigure.Network.init(parsing:))
        let figure = try GradCAMFigure(networks: networks, data: data, count: images)
        print("Grad-CAM of \(networks.map(\.label).joined(separator: ", ")) on \(figure.indices.count) test images → \(try figure.write(to: out).path)")
    }
}
