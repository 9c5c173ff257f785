import Checkpoints
import Datasets
import Engine
import Foundation
import Models
import NN

/// The one training loop: epochs with the multi-step schedule, an iteration per batch (the
/// `TrainingStep`, the part that varies), evaluation after every epoch, `metrics.jsonl`, `last`/`best`
/// checkpoints, `resume.safetensors`, progress lines and `summary.md`. It runs supervised training
/// (`Trainer.supervised`) and every distillation method (`Trainer.distillation`) alike. A run resumed
/// from `resume.safetensors` (written at the end of every epoch) ends bit-identical to an
/// uninterrupted one: initialisation, batch order and augmentation are all seeded, and the step
/// saves its own state with the loop's.
///
/// Data-parallel (`replicas`, the processes of an `mpirun` job): every process runs this loop on
/// an equal slice of every batch (its loader's `share`), within `Replicas.with(replicas)`, so that
/// batch norm uses the whole batch's statistics and gradients are averaged over the processes; the
/// result is that of one process with the whole batch, up to the order of floating-point sums.
/// Losses and accuracies are summed over the processes; evaluation is split over them; rank 0
/// alone writes the run's files; after every epoch the processes compare a hash of their
/// parameters and stop if they differ.
public final class Trainer {
    public let configuration: any RunConfiguration
    public let run: RunDirectory
    public let step: any TrainingStep
    public let trainLoader: BatchLoader
    public let testLoader: BatchLoader
    public let classNames: [String]
    public private(set) var optimizer: OptimizerDriver<SGD>
    public private(set) var nextEpoch = 0
    public private(set) var bestTop1 = 0.0
    let schedule: MultiStepLR
    /// The processes of a data-parallel run, or nil for one process.
    public let replicas: (any ReplicaGroup)?
    /// Whether this process writes the run's files (rank 0, or a process on its own).
    public var isWriter: Bool { (replicas?.rank ?? 0) == 0 }

    public var training: TrainingConfiguration { configuration.training }
    /// The network evaluated and checkpointed.
    public var model: any FeatureClassifier { step.model }

    /// A loop for `step`; with `resume`, continues from the run directory's resume file if there is
    /// one, else starts afresh (writing `config.json`, dropping old metrics).
    /// With `replicas`, `trainLoader` must load this process's share of every batch, and every
    /// batch must split equally over the processes (else `TrainingError.unevenShares`).
    public init(configuration: any RunConfiguration, run: RunDirectory, step: any TrainingStep, trainLoader: BatchLoader,
                testLoader: BatchLoader, classNames: [String], resume: Bool, replicas: (any ReplicaGroup)? = nil) throws {
        let replicas = replicas.flatMap { $0.size > 1 ? $0 : nil }
        if let replicas { try Trainer.checkShares(of: trainLoader, over: replicas) }
        self.replicas = replicas
        self.configuration = configuration
        self.run = run
        self.step = step
        self.trainLoader = trainLoader
        self.testLoader = testLoader
        self.classNames = classNames
        let t = configuration.training
        schedule = MultiStepLR(baseRate: t.learningRate, milestones: t.milestones, gamma: t.lrDecay)
        optimizer = OptimizerDriver(SGD(learningRate: t.learningRate, momentum: t.momentum, weightDecay: t.weightDecay, nesterov: t.nesterov))
        if resume, FileManager.default.fileExists(atPath: run.file("resume.safetensors").path) {
            try loadResumeState()
        } else {
            if resume, FileManager.default.fileExists(atPath: run.file("config.json").path), isWriter {
                FileHandle.standardError.write(Data("note: \(run.url.path) holds no resume file (the earlier run ended before its first epoch did); starting from epoch 1\n".utf8))
            }
            if isWriter {
                try run.writeJSON(configuration, to: "config.json")
                try? FileManager.default.removeItem(at: run.file("metrics.jsonl"))
                try? FileManager.default.removeItem(at: run.file("steps.jsonl"))
            }
        }
    }

    /// Throws unless every batch of `loader` splits into `replicas.size` equal shares and the
    /// loader takes this process's.
    static func checkShares(of loader: BatchLoader, over replicas: any ReplicaGroup) throws {
        let (b, r) = (loader.batchSize, replicas.size)
        guard b % r == 0 else {
            throw TrainingError.unevenShares(reason: "--batch-size \(b) does not split equally over \(r) processes; use a multiple of \(r)")
        }
        let last = loader.dropLast ? 0 : loader.dataset.count % b
        guard last % r == 0 else {
            throw TrainingError.unevenShares(reason: "the last batch of every epoch holds \(last) of the \(loader.dataset.count) training images, which do not split equally over \(r) processes; choose --train-limit (or --batch-size) so that it does")
        }
        guard loader.share == (replicas.rank, r) else {
            throw TrainingError.unevenShares(reason: "the training loader takes part \(loader.share.part) of \(loader.share.parts), not this process's (\(replicas.rank) of \(r))")
        }
    }

    // MARK: Resume state

    func saveResumeState() throws {
        var tensors = step.learner.stateDict.map { (step.resumePrefix + "." + $0.0, $0.1) }
        for (name, state) in optimizer.states.sorted(by: { $0.key < $1.key }) {
            if let b = state.momentumBuffer { tensors.append(("optimizer." + name + ".momentum_buffer", b)) }
        }
        var metadata = ["next_epoch": "\(nextEpoch)", "best_top1": "\(bestTop1)", "processes": "\(replicas?.size ?? 1)",
                        "config": String(decoding: try JSONEncoder().encode(configuration), as: UTF8.self)]
        let own = try step.resumeState()
        tensors += own.tensors
        metadata.merge(own.metadata) { a, _ in a }
        try SafeTensors.write(tensors, metadata: metadata, to: run.file("resume.safetensors"))
    }

    func loadResumeState() throws {
        let url = run.file("resume.safetensors")
        let contents = try SafeTensors.read(url)
        guard let configJSON = contents.metadata["config"] else {
            throw TrainingError.resumeMismatch(path: url.path, reason: "it holds no run configuration")
        }
        guard configuration.matches(json: configJSON) else {
            let differences = configuration.differences(from: configJSON)
            let what = differences.isEmpty ? "another configuration (\(configJSON))" : "other settings: " + differences.joined(separator: ", ")
            throw TrainingError.resumeMismatch(path: url.path, reason: "it was written by a run with \(what); use the same settings, another --name, or drop --resume")
        }
        let writtenBy = contents.metadata["processes"].flatMap(Int.init) ?? 1, now = replicas?.size ?? 1
        if writtenBy != now, isWriter {
            FileHandle.standardError.write(Data("note: resuming on \(now) process\(now == 1 ? "" : "es") a run written by \(writtenBy); from here results agree with an uninterrupted run up to the order of floating-point sums, not bit for bit\n".utf8))
        }
        let prefix = step.resumePrefix + "."
        var learnerState: [String: Tensor] = [:]
        for (name, t) in contents.tensors {
            if name.hasPrefix(prefix) { learnerState[String(name.dropFirst(prefix.count))] = t }
            if name.hasPrefix("optimizer."), name.hasSuffix(".momentum_buffer") {
                optimizer.states[String(name.dropFirst(10).dropLast(16))] = SGD.State(momentumBuffer: t)
            }
        }
        try ModelCheckpoint.load(learnerState, into: step.learner, path: url.path)
        try step.restore(from: contents, path: url.path)
        nextEpoch = Int(contents.metadata["next_epoch"] ?? "0") ?? 0
        bestTop1 = Double(contents.metadata["best_top1"] ?? "0") ?? 0
        try run.keepMetrics(throughEpoch: nextEpoch)
    }

    // MARK: Training

    /// Runs the remaining epochs (all, or `stopAfter` of them); returns the last test result.
    @discardableResult
    public func train(progress: ProgressLine? = ProgressLine(), stopAfter: Int? = nil) throws -> EvaluationResult? {
        let progress = isWriter ? progress : nil
        var last: EvaluationResult? = nil
        let t = training
        let end = stopAfter.map { min(t.epochs, nextEpoch + $0) } ?? t.epochs
        let metadata = ["arch": t.arch, "classes": "\(classNames.count)", "class_names": classNames.joined(separator: ","), "data": t.data,
                        "command": CommandLine.arguments.joined(separator: " ")].merging(step.checkpointMetadata) { a, _ in a }
        let batches = trainLoader.batchCount
        let label = step.label.isEmpty ? "" : step.label + " "
        while nextEpoch < end {
            let epoch = nextEpoch
            let lr = schedule.rate(epoch: epoch)
            optimizer.optimizer.learningRate = lr
            step.learner.train()
            step.beginEpoch()
            let start = Date()
            let trafficBefore = replicas?.traffic
            var seen = 0, correct = 0
            var lossSum = 0.0
            var termSums: [(key: String, sum: Double)] = []
            var steps: [[String: Any]] = []
            let iterator = trainLoader.batches(epoch: epoch)
            var batchIndex = 0
            while let batch = try iterator.next() {
                // Dropout masks from a stream of this batch's own, so that a resumed run draws what an uninterrupted one drew.
                let result = try DropoutNoise.with(seed: Trainer.dropoutSeed(t.seed, epoch: epoch, batch: batchIndex)) {
                    try Replicas.with(replicas) {
                        try step.run(batch, index: batchIndex, batches: batches, epoch: epoch, optimizer: &optimizer)
                    }
                }
                // This batch's images, correct predictions, loss and terms, over every process.
                var sums = [Double(batch.labels.count), Double(Evaluation.correct(result.logits, batch.labels).top1), Double(result.loss)]
                    + result.terms.map { Double($0.value) }
                if let replicas { sums = replicas.sum(sums) }
                let n = sums[0], meanOf = { (sum: Double) in sum / Double(self.replicas?.size ?? 1) }
                seen += Int(n)
                correct += Int(sums[1])
                lossSum += meanOf(sums[2]) * n
                if termSums.isEmpty { termSums = result.terms.map { ($0.key, 0) } }
                for i in termSums.indices { termSums[i].sum += meanOf(sums[3 + i]) * n }
                var entry: [String: Any] = ["epoch": epoch + 1, "batch": batchIndex + 1, "lr": Double(lr), "loss": meanOf(sums[2])]
                for (i, term) in termSums.enumerated() { entry[term.key] = meanOf(sums[3 + i]) }
                steps.append(entry)
                batchIndex += 1
                let elapsed = Date().timeIntervalSince(start)
                let rate = Double(seen) / max(elapsed, 1e-9)
                let remaining = Double(batches - batchIndex) * Double(t.batchSize) / rate
                    + Double(end - epoch - 1) * Double(seen) / Double(batchIndex) * Double(batches) / rate
                let detail = step.progressDetail.isEmpty ? "" : "  " + step.progressDetail
                progress?.update(String(format: "%@epoch %d/%d  batch %d/%d  %.0f img/s  loss %.4f  acc %.2f%%  lr %.4g%@  ETA %@",
                                        label, epoch + 1, t.epochs, batchIndex, batches, rate, lossSum / Double(seen),
                                        100 * Double(correct) / Double(seen), lr, detail, ProgressLine.duration(remaining)))
            }
            let trainSeconds = Date().timeIntervalSince(start)
            let trafficAfter = replicas?.traffic
            // A finite loss can still leave infinite or NaN weights (a diverging learning rate):
            // those must never replace a finite checkpoint.
            // (Within the epoch, such weights make the next batch's loss non-finite, which stops the run.)
            if let bad = try (step.learner.stateDict + step.resumeState().tensors).first(where: { $0.1.scalars.contains { !$0.isFinite } }) {
                throw TrainingError.nonFiniteParameter(epoch: epoch, batch: batchIndex - 1, name: bad.0)
            }
            if let replicas {
                let hash = try Trainer.parameterHash(step.learner.stateDict + step.resumeState().tensors)
                let all = replicas.gather([Int(bitPattern: UInt(hash))])
                guard all.allSatisfy({ $0 == all[0] }) else { throw TrainingError.replicasDiverged(epoch: epoch, hashes: all) }
            }
            let result = try Evaluation.evaluate(step.model, loader: testLoader, replicas: replicas)
            last = result
            nextEpoch = epoch + 1
            let improved = result.top1 > bestTop1
            if improved { bestTop1 = result.top1 }
            let epochMetadata = metadata.merging(["epoch": "\(nextEpoch)", "top1": String(format: "%.2f", result.top1)]) { $1 }
            let d = Double(max(seen, 1))
            var entry: [String: Any] = [
                "epoch": nextEpoch, "lr": Double(lr), "train_loss": lossSum / d, "train_top1": 100 * Double(correct) / d,
                "test_top1": result.top1, "test_top5": result.top5, "test_loss": result.loss,
                "images_per_s": Double(seen) / trainSeconds, "seconds": Date().timeIntervalSince(start),
            ]
            for term in termSums { entry[term.key] = term.sum / d }
            if let replicas, let before = trafficBefore, let after = trafficAfter {
                // What this process sent to the others during the epoch's training, and the time it spent in those calls.
                entry["processes"] = replicas.size
                entry["sent_bytes_per_step"] = Double(after.bytes - before.bytes) / Double(max(batchIndex, 1))
                entry["communication_seconds"] = after.seconds - before.seconds
            }
            entry.merge(step.epochMetrics()) { a, _ in a }
            if isWriter {
                try ModelCheckpoint.save(step.model, metadata: epochMetadata, to: run.file("last.safetensors"))
                if improved { try ModelCheckpoint.save(step.model, metadata: epochMetadata, to: run.file("best.safetensors")) }
                try step.saveEpochFiles(in: run, metadata: epochMetadata)
                try run.appendLines(steps, to: "steps.jsonl")
                try run.appendMetrics(entry)
                try run.writeTensorBoardLog()
                try saveResumeState()
            }
            progress?.update(String(format: "%@epoch %d/%d done  train %.2f%%  test top-1 %.2f%% top-5 %.2f%%  best %.2f%%  %.0f img/s%@",
                                    label, nextEpoch, t.epochs, 100 * Double(correct) / d, result.top1, result.top5, bestTop1,
                                    Double(seen) / trainSeconds, step.epochSummary()), force: true)
            progress?.finish()
        }
        if isWriter { try writeSummary() }
        return last
    }

    /// FNV-1a over the names and float bits of `tensors`: equal on every process while the
    /// replicas agree.
    static func parameterHash(_ tensors: [(String, Tensor)]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ byte: UInt8) { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        for (name, t) in tensors {
            for b in name.utf8 { mix(b) }
            for v in t.scalars { var bits = v.bitPattern; for _ in 0..<4 { mix(UInt8(bits & 0xFF)); bits >>= 8 } }
        }
        return h
    }

    /// The seed of the dropout masks of one batch: the run's seed, the epoch and the batch mixed
    /// by SplitMix64's finaliser.
    static func dropoutSeed(_ seed: UInt64, epoch: Int, batch: Int) -> UInt64 {
        var z = seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch &* 1_000_003 &+ batch &+ 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `summary.md`: what ran (the step's heading), the recipe and the step's settings, the best and
    /// last accuracy, and the per-epoch table.
    public func writeSummary() throws {
        let rows = run.metrics()
        let t = training
        var text = step.summaryHeading(t)
        text += "Epochs \(nextEpoch)/\(t.epochs), batch \(t.batchSize), lr \(t.learningRate) (×\(t.lrDecay) at \(t.milestones)), momentum \(t.momentum)"
        text += "\(t.nesterov ? " Nesterov" : ""), weight decay \(t.weightDecay), seed \(t.seed)\(t.trainLimit.map { ", \($0) training images" } ?? "")\(t.testLimit.map { ", tested on \($0) test images only (spread evenly over the test set)" } ?? "")\(t.augment ? "" : ", no augmentation"). "
        text += step.summaryDetails()
        text += "\n\n"
        if let lastRow = rows.last {
            text += String(format: "Last epoch: test top-1 %.2f%%, top-5 %.2f%%. Best top-1: %.2f%%.\n\n",
                           lastRow["test_top1"] as? Double ?? 0, lastRow["test_top5"] as? Double ?? 0, bestTop1)
        }
        let columns = step.summaryColumns
        text += "| epoch | lr | train loss | train top-1 | test top-1 | test top-5 | img/s |" + columns.map { " \($0.title) |" }.joined() + "\n"
        text += "|---:|---:|---:|---:|---:|---:|---:|" + String(repeating: "---|", count: columns.count) + "\n"
        for r in rows {
            text += String(format: "| %d | %.4g | %.4f | %.2f | %.2f | %.2f | %.0f |", r["epoch"] as? Int ?? 0, r["lr"] as? Double ?? 0,
                           r["train_loss"] as? Double ?? 0, r["train_top1"] as? Double ?? 0, r["test_top1"] as? Double ?? 0,
                           r["test_top5"] as? Double ?? 0, r["images_per_s"] as? Double ?? 0)
            text += columns.map { " \($0.value(r)) |" }.joined() + "\n"
        }
        try run.writeText(text, to: "summary.md")
    }
}

extension Trainer {
    /// Supervised training of `config.arch` from scratch on `config.data`.
    /// With `replicas` (a data-parallel run), this process's share of every batch.
    public static func supervised(_ config: TrainingConfiguration, run: RunDirectory, resume: Bool,
                                  replicas: (any ReplicaGroup)? = nil) throws -> Trainer {
        let spec = try DatasetSpec(parsing: config.data)
        let (trainSet, testSet) = try spec.load()
        let train = config.trainingImages(trainSet)
        let trainLoader = BatchLoader(dataset: train, batchSize: config.batchSize, shuffle: true, dropLast: false,
                                      pipeline: spec.pipeline(train: config.augment), seed: config.seed, workers: config.loaderThreads,
                                      share: replicas.map { ($0.rank, $0.size) } ?? (0, 1))
        let testLoader = BatchLoader(dataset: config.testImages(testSet), batchSize: 256, shuffle: false, dropLast: false,
                                     pipeline: spec.pipeline(train: false), seed: 0, workers: config.loaderThreads)
        Initialization.seed(config.seed)
        let model = try ModelZoo.make(config.arch, classes: trainSet.classCount)
        return try Trainer(configuration: config, run: run, step: SupervisedStep(model: model), trainLoader: trainLoader,
                           testLoader: testLoader, classNames: trainSet.classNames, resume: resume, replicas: replicas)
    }
}
