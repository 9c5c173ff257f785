import Checkpoints
import Datasets
import Engine
import Foundation
import Models
import NN

/// Why a training run stopped early.
public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(epoch: Int, batch: Int, value: Float)
    case resumeMismatch(path: String, reason: String)

    public var description: String {
        switch self {
        case let .nonFiniteLoss(epoch, batch, value):
            return "the loss became \(value) at epoch \(epoch + 1), batch \(batch + 1); the last good checkpoints are kept (try a lower --lr)"
        case let .resumeMismatch(path, reason): return "\(path): cannot resume: \(reason)"
        }
    }
}

/// Trains a classifier from scratch with SGD and the multi-step schedule, evaluating after every
/// epoch and keeping `last`, `best` and `resume` checkpoints in the run directory. A run resumed
/// from `resume.safetensors` (written at the end of every epoch) ends bit-identical to an
/// uninterrupted one: initialisation, batch order and augmentation are all seeded.
public final class SupervisedTrainer {
    public let config: TrainingConfiguration
    public let run: RunDirectory
    public let model: any FeatureClassifier
    public let trainLoader: BatchLoader
    public let testLoader: BatchLoader
    public private(set) var optimizer: OptimizerDriver<SGD>
    public private(set) var nextEpoch = 0
    public private(set) var bestTop1 = 0.0
    public let classNames: [String]
    let schedule: MultiStepLR

    public init(config: TrainingConfiguration, run: RunDirectory, resume: Bool) throws {
        self.config = config
        self.run = run
        let spec = try DatasetSpec(parsing: config.data)
        let (trainSet, testSet) = try spec.load()
        let train: any ImageDataset = config.trainLimit.map { SubsetDataset(trainSet, count: $0, seed: config.seed) } ?? trainSet
        trainLoader = BatchLoader(dataset: train, batchSize: config.batchSize, shuffle: true, dropLast: false,
                                  pipeline: spec.pipeline(train: true), seed: config.seed, workers: config.loaderThreads)
        testLoader = BatchLoader(dataset: testSet, batchSize: 256, shuffle: false, dropLast: false,
                                 pipeline: spec.pipeline(train: false), seed: 0, workers: config.loaderThreads)
        classNames = trainSet.classNames
        Initialization.seed(config.seed)
        model = try ModelZoo.make(config.arch, classes: trainSet.classCount)
        schedule = MultiStepLR(baseRate: config.learningRate, milestones: config.milestones, gamma: config.gamma)
        optimizer = OptimizerDriver(SGD(learningRate: config.learningRate, momentum: config.momentum,
                                        weightDecay: config.weightDecay, nesterov: config.nesterov))
        if resume, FileManager.default.fileExists(atPath: run.file("resume.safetensors").path) {
            try loadResumeState()
        } else {
            try run.writeJSON(config, to: "config.json")
            try? FileManager.default.removeItem(at: run.file("metrics.jsonl"))
        }
    }

    // MARK: Resume state

    func saveResumeState() throws {
        var tensors = model.stateDict.map { ("model." + $0.0, $0.1) }
        for (name, state) in optimizer.states.sorted(by: { $0.key < $1.key }) {
            if let buffer = state.momentumBuffer { tensors.append(("optimizer." + name + ".momentum_buffer", buffer)) }
        }
        let configJSON = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try SafeTensors.write(tensors, metadata: ["next_epoch": "\(nextEpoch)", "best_top1": "\(bestTop1)", "config": configJSON],
                              to: run.file("resume.safetensors"))
    }

    func loadResumeState() throws {
        let url = run.file("resume.safetensors")
        let contents = try SafeTensors.read(url)
        guard let configJSON = contents.metadata["config"],
              let saved = try? JSONDecoder().decode(TrainingConfiguration.self, from: Data(configJSON.utf8)) else {
            throw TrainingError.resumeMismatch(path: url.path, reason: "it holds no training configuration")
        }
        guard saved == config else {
            throw TrainingError.resumeMismatch(path: url.path, reason: "it was written by a run with another configuration (\(configJSON)); use another --name or drop --resume")
        }
        var modelState: [String: Tensor] = [:]
        for (name, t) in contents.tensors {
            if name.hasPrefix("model.") { modelState[String(name.dropFirst(6))] = t }
            if name.hasPrefix("optimizer."), name.hasSuffix(".momentum_buffer") {
                let key = String(name.dropFirst(10).dropLast(16))
                optimizer.states[key] = SGD.State(momentumBuffer: t)
            }
        }
        try ModelCheckpoint.load(modelState, into: model, path: url.path)
        nextEpoch = Int(contents.metadata["next_epoch"] ?? "0") ?? 0
        bestTop1 = Double(contents.metadata["best_top1"] ?? "0") ?? 0
        try run.keepMetrics(throughEpoch: nextEpoch)
    }

    // MARK: Training

    /// Runs the remaining epochs (all, or `stopAfter` of them); returns the final test result.
    @discardableResult
    public func train(progress: ProgressLine? = ProgressLine(), stopAfter: Int? = nil) throws -> EvaluationResult? {
        var last: EvaluationResult? = nil
        let end = stopAfter.map { min(config.epochs, nextEpoch + $0) } ?? config.epochs
        let metadata = ["arch": config.arch, "classes": "\(classNames.count)", "class_names": classNames.joined(separator: ","), "data": config.data,
                        "command": CommandLine.arguments.joined(separator: " ")]
        while nextEpoch < end {
            let epoch = nextEpoch
            let lr = schedule.rate(epoch: epoch)
            optimizer.optimizer.learningRate = lr
            model.train()
            let start = Date()
            var seen = 0, correct = 0
            var lossSum = 0.0
            let iterator = trainLoader.batches(epoch: epoch)
            var batchIndex = 0
            while let batch = try iterator.next() {
                let logits = model(batch.images)
                let loss = crossEntropy(logits, labels: batch.labels)
                let value = loss.item
                guard value.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch, batch: batchIndex, value: value) }
                optimizer.minimize(loss, of: model)
                seen += batch.labels.count
                correct += Evaluation.correct(logits, batch.labels).top1
                lossSum += Double(value) * Double(batch.labels.count)
                batchIndex += 1
                let elapsed = Date().timeIntervalSince(start)
                let rate = Double(seen) / max(elapsed, 1e-9)
                let remaining = Double(trainLoader.batchCount - batchIndex) * Double(config.batchSize) / rate
                    + Double(end - epoch - 1) * Double(trainLoader.dataset.count) / rate
                progress?.update(String(format: "epoch %d/%d  batch %d/%d  %.0f img/s  loss %.4f  acc %.2f%%  lr %.4g  ETA %@",
                                        epoch + 1, config.epochs, batchIndex, trainLoader.batchCount, rate, lossSum / Double(seen),
                                        100 * Double(correct) / Double(seen), lr, ProgressLine.duration(remaining)))
            }
            let trainSeconds = Date().timeIntervalSince(start)
            let result = try Evaluation.evaluate(model, loader: testLoader)
            last = result
            nextEpoch = epoch + 1
            let improved = result.top1 > bestTop1
            if improved { bestTop1 = result.top1 }
            let epochMetadata = metadata.merging(["epoch": "\(nextEpoch)", "top1": String(format: "%.2f", result.top1)]) { $1 }
            try ModelCheckpoint.save(model, metadata: epochMetadata, to: run.file("last.safetensors"))
            if improved { try ModelCheckpoint.save(model, metadata: epochMetadata, to: run.file("best.safetensors")) }
            try run.appendMetrics([
                "epoch": nextEpoch, "lr": Double(lr), "train_loss": lossSum / Double(max(seen, 1)),
                "train_top1": 100 * Double(correct) / Double(max(seen, 1)), "test_top1": result.top1, "test_top5": result.top5,
                "test_loss": result.loss, "images_per_s": Double(seen) / trainSeconds, "seconds": Date().timeIntervalSince(start),
            ])
            try saveResumeState()
            progress?.update(String(format: "epoch %d/%d done  train %.2f%%  test top-1 %.2f%% top-5 %.2f%%  best %.2f%%  %.0f img/s",
                                    nextEpoch, config.epochs, 100 * Double(correct) / Double(max(seen, 1)), result.top1, result.top5,
                                    bestTop1, Double(seen) / trainSeconds), force: true)
            progress?.finish()
        }
        try writeSummary()
        return last
    }

    /// `summary.md`: the configuration, the final and best accuracy, and the per-epoch table.
    public func writeSummary() throws {
        let rows = run.metrics()
        var text = "# \(config.arch) on \(config.data)\n\n"
        text += "Epochs \(nextEpoch)/\(config.epochs), batch \(config.batchSize), lr \(config.learningRate) (×\(config.gamma) at \(config.milestones)), "
        text += "momentum \(config.momentum)\(config.nesterov ? " Nesterov" : ""), weight decay \(config.weightDecay), seed \(config.seed)"
        text += config.trainLimit.map { ", \($0) training images" } ?? ""
        text += ".\n\n"
        if let last = rows.last {
            text += String(format: "Last epoch: test top-1 %.2f%%, top-5 %.2f%%. Best top-1: %.2f%%.\n\n",
                           last["test_top1"] as? Double ?? 0, last["test_top5"] as? Double ?? 0, bestTop1)
        }
        text += "| epoch | lr | train loss | train top-1 | test top-1 | test top-5 | img/s |\n|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in rows {
            text += String(format: "| %d | %.4g | %.4f | %.2f | %.2f | %.2f | %.0f |\n", r["epoch"] as? Int ?? 0, r["lr"] as? Double ?? 0,
                           r["train_loss"] as? Double ?? 0, r["train_top1"] as? Double ?? 0, r["test_top1"] as? Double ?? 0,
                           r["test_top5"] as? Double ?? 0, r["images_per_s"] as? Double ?? 0)
        }
        try run.writeText(text, to: "summary.md")
    }
}
