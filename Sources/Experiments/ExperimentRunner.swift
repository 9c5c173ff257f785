import Distillation
import Engine
import Foundation

/// Runs every cell of an experiment in order: a finished cell (its `result.json` exists) is
/// skipped, an interrupted one resumes from its last finished epoch (bit-identically, see the
/// trainers), a new one starts. The process may be stopped at any time; nothing finished is lost
/// or redone.
///
/// In an `mpirun` job the cells are shared out: the processes form groups (`cellGroup`, of
/// `--ranks-per-cell` processes; by default one group of all), each group runs every
/// `groupCount`-th cell data-parallel, teachers first (all groups wait until every teacher is
/// trained before any distillation starts); each group's rank 0 writes its cells, the world's rank 0
/// the experiment's files.
public final class ExperimentRunner {
    public let spec: ExperimentSpec
    public let output: URL
    /// All the job's processes (nil: a process on its own).
    public let world: (any ReplicaGroup)?
    /// The processes this one runs its cells with (nil: on its own), which of the groups it is, and how many there are.
    public let cellGroup: (any ReplicaGroup)?
    public let groupIndex: Int, groupCount: Int
    /// The experiment's folder, held (`RunLock`) while this runner lives: one `mmkd run` at a time
    /// per output folder; opening it removes what a killed run left half-written (figures included).
    let folder: RunDirectory

    public init(spec: ExperimentSpec, output: String? = nil, world: (any ReplicaGroup)? = nil, cellGroup: (any ReplicaGroup)? = nil,
                groupIndex: Int = 0, groupCount: Int = 1) throws {
        self.spec = spec
        self.output = URL(fileURLWithPath: output ?? spec.outputPath)
        self.world = world; self.cellGroup = cellGroup; self.groupIndex = groupIndex; self.groupCount = groupCount
        let writer = (world?.rank ?? 0) == 0
        folder = try RunDirectory(self.output.path, exclusive: writer)
        if writer { try folder.writeJSON(spec, to: "experiment.json") }
        world?.synchronize()
    }

    /// Whether this process writes its group's cells.
    var writesCells: Bool { (cellGroup?.rank ?? 0) == 0 }

    /// The result of a finished cell, or nil.
    public func result(of cell: ExperimentCell) -> ExperimentCell.Result? {
        try? JSONDecoder().decode(ExperimentCell.Result.self, from: Data(contentsOf: output.appendingPathComponent(cell.path + "/result.json")))
    }

    /// Runs the cells not yet finished. `stopAfterEpochs` ends the call after that many epochs of
    /// training in total (an interruption at an epoch boundary, for tests); returns whether every
    /// cell has finished.
    @discardableResult
    public func run(progress: ProgressLine? = ProgressLine(), stopAfterEpochs: Int? = nil) throws -> Bool {
        let cells = spec.cells()
        let progress = writesCells ? progress : nil
        let replicas = cellGroup.flatMap { $0.size > 1 ? $0 : nil }
        var budget = stopAfterEpochs
        // Teachers first; each group its share of each phase; everyone waits for a phase to end.
        let phases = [cells.indices.filter { if case .teacher = cells[$0].kind { return true } else { return false } },
                      cells.indices.filter { if case .teacher = cells[$0].kind { return false } else { return true } }]
        let mine = phases.map { phase in phase.enumerated().filter { $0.offset % groupCount == groupIndex }.map(\.element) }
        // (-1: the end of the teachers, where every process waits until all are trained.)
        for index in mine[0] + [-1] + mine[1] {
            if index < 0 { world?.synchronize(); continue }
            let cell = cells[index]
            let head = "[\(index + 1)/\(cells.count)] \(cell.label)"
            let run = try RunDirectory(output.appendingPathComponent(cell.path).path, exclusive: writesCells)
            let finished = result(of: cell)
            if cellGroup.map({ $0.decide(finished != nil) }) ?? (finished != nil) {
                try checkConfiguration(of: cell, in: run)
                if let done = finished {
                    progress?.update(String(format: "%@: finished (best %.2f%%, last %.2f%%)", head, done.bestTop1, done.lastTop1), force: true)
                }
                progress?.finish()
                continue
            }
            if budget == 0 { return false }
            progress?.update("\(head): starting", force: true)
            progress?.finish()
            let epochs: Int, before: Int
            switch cell.kind {
            case let .teacher(t):
                let trainer = try Trainer.supervised(teacherConfiguration(t), run: run, resume: true, replicas: replicas)
                (before, epochs) = (trainer.nextEpoch, trainer.training.epochs)
                try trainer.train(progress: progress, stopAfter: budget)
                if trainer.nextEpoch < epochs { return false }
            case let .alone(student, seed):
                let trainer = try Trainer.supervised(spec.budget.configuration(arch: student, data: spec.data, seed: seed), run: run, resume: true, replicas: replicas)
                (before, epochs) = (trainer.nextEpoch, trainer.training.epochs)
                try trainer.train(progress: progress, stopAfter: budget)
                if trainer.nextEpoch < epochs { return false }
            case let .distill(pair, method, seed):
                let trainer = try Trainer.distillation(try distillationConfiguration(pair: pair, method: method, seed: seed), run: run, resume: true, replicas: replicas)
                (before, epochs) = (trainer.nextEpoch, trainer.training.epochs)
                _ = try trainer.distillation!.evaluateTeachers(run: run, testLoader: trainer.testLoader, progress: progress, replicas: replicas)
                try trainer.train(progress: progress, stopAfter: budget)
                if trainer.nextEpoch < epochs { return false }
            }
            budget = budget.map { $0 - (epochs - before) }
            if writesCells { try finish(cell, run: run, epochs: epochs) }
        }
        world?.synchronize()
        return true
    }

    /// The recipe of a teacher trained here.
    func teacherConfiguration(_ t: ExperimentSpec.Teacher) -> TrainingConfiguration {
        var b = spec.budget
        if let e = t.train?.epochs { b.epochs = e; b.milestones = b.milestones.map { $0.filter { $0 < e } } }
        if let l = t.train?.trainLimit { b.trainLimit = l }
        return b.configuration(arch: t.arch, data: spec.data, seed: t.train?.seed ?? 0)
    }

    /// The `distill` configuration of a cell.
    public func distillationConfiguration(pair: ExperimentSpec.Pair, method: ExperimentSpec.Method, seed: UInt64) throws -> DistillationConfiguration {
        let teachers = pair.teachers.map { name in spec.teachers.first { $0.name == name }! }
        let hyper = try method.hyperparameters()
        var config = DistillationConfiguration(student: pair.student, data: spec.data,
                                               teachers: teachers.map { TeacherSpec(arch: $0.arch, checkpoint: spec.checkpoint(of: $0, output: output)) },
                                               method: hyper.method)
        config.training = spec.budget.configuration(arch: pair.student, data: spec.data, seed: seed)
        config.hyper = hyper
        return config
    }

    /// A finished cell must have been run with the configuration the file asks for now.
    func checkConfiguration(of cell: ExperimentCell, in run: RunDirectory) throws {
        let saved = (try? Data(contentsOf: run.file("config.json"))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let differences: [String]
        switch cell.kind {
        case let .teacher(t): differences = teacherConfiguration(t).differences(from: saved)
        case let .alone(student, seed): differences = spec.budget.configuration(arch: student, data: spec.data, seed: seed).differences(from: saved)
        case let .distill(pair, method, seed): differences = try distillationConfiguration(pair: pair, method: method, seed: seed).differences(from: saved)
        }
        guard differences.isEmpty else {
            throw ExperimentError.invalid("\(run.url.path) finished with other settings than the experiment file now gives for \(cell.label) (\(differences.joined(separator: ", "))); move that folder away or set another output")
        }
    }

    /// Writes `result.json` from the run's metrics.
    func finish(_ cell: ExperimentCell, run: RunDirectory, epochs: Int) throws {
        let rows = run.metrics()
        let accuracies = rows.compactMap { $0["test_top1"] as? Double }
        guard let last = accuracies.last, accuracies.count == epochs else {
            throw ExperimentError.missingRun("\(run.url.path): metrics.jsonl holds \(accuracies.count) of \(epochs) epochs after training finished")
        }
        let best = accuracies.enumerated().max { $0.element < $1.element }!
        let (pair, method, seed): (String?, String, UInt64) = {
            switch cell.kind {
            case let .teacher(t): return (nil, "teacher", t.train?.seed ?? 0)
            case let .alone(_, s): return (nil, ExperimentSpec.Method.alone, s)
            case let .distill(p, m, s): return (p.label, m.name, s)
            }
        }()
        let seconds = rows.compactMap { $0["seconds"] as? Double }.reduce(0, +)
        let result = ExperimentCell.Result(cell: cell.path, pair: pair, method: method, seed: seed, epochs: epochs, bestTop1: best.element,
                                           lastTop1: last, bestEpoch: best.offset + 1, seconds: seconds)
        try run.writeJSON(result, to: "result.json")
    }
}
