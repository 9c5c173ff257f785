import ArgumentParser
import Checkpoints
import Datasets
import Distillation
import Engine
import Foundation
import Models

/// `mmkd train`: trains a network from scratch (the teachers MMKD needs) with the paper's recipe.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a classifier from scratch (SGD, multi-step schedule) and evaluate it every epoch.",
        discussion: """
        Data sets (--data KIND:PATH): cifar10:DIR, cifar100:DIR (official binary batches), fashion-mnist[:DIR] \
        (IDX, default /usr/share/datasets/fashion-mnist), folder:ROOT (ROOT/train/<class>/*, ROOT/test/<class>/*).
        The run directory (RUNS/NAME) receives config.json, metrics.jsonl, summary.md, best/last.safetensors and \
        resume.safetensors; --resume continues an interrupted run from its last finished epoch.
        """)

    @Option(help: "Architecture (\(ModelZoo.names.joined(separator: ", "))).") var arch: String
    @Option(help: "Data set as KIND:PATH.") var data: String
    @Option(help: "Epochs.") var epochs: Int = 240
    @Option(help: "Batch size.") var batchSize: Int = 64
    @Option(help: "Learning rate (default 0.05; 0.01 for MobileNetV2/ShuffleV1/ShuffleV2).") var lr: Float?
    @Option(help: "Epochs after which the learning rate is multiplied by --gamma (comma-separated).") var milestones: String = "150,180,210"
    @Option(help: "Learning-rate factor at each milestone.") var gamma: Float = 0.1
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Option(help: "Weight decay.") var weightDecay: Float = 5e-4
    @Flag(help: "Plain momentum instead of Nesterov.") var noNesterov = false
    @Option(help: "Seed of initialisation, batch order and augmentation.") var seed: UInt64 = 0
    @Option(help: "Use a seeded random subset of this many training images per epoch (short budgets).") var trainLimit: Int?
    @Option(help: "Threads decoding and augmenting batches.") var loaderThreads: Int = 2
    @Option(help: "Folder holding run directories.") var runsDir: String = "runs"
    @Option(help: "Run name (default ARCH-seedSEED).") var name: String?
    @Flag(help: "Continue the run in RUNS/NAME from its last finished epoch.") var resume = false

    func validate() throws {
        guard ModelZoo.names.contains(arch) else { throw ValidationError("--arch: unknown architecture '\(arch)'; known: \(ModelZoo.names.joined(separator: ", "))") }
        guard epochs > 0 else { throw ValidationError("--epochs must be positive, got \(epochs)") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        if let lr, !(lr > 0) { throw ValidationError("--lr must be positive, got \(lr)") }
        guard (try? parsedMilestones()) != nil else { throw ValidationError("--milestones must be comma-separated epoch numbers, got '\(milestones)'") }
        if let trainLimit, trainLimit <= 0 { throw ValidationError("--train-limit must be positive, got \(trainLimit)") }
        _ = try DatasetSpec(parsing: data)
    }

    func parsedMilestones() throws -> [Int] {
        try milestones.split(separator: ",").map { guard let v = Int($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("") }; return v }
    }

    func run() throws {
        var config = TrainingConfiguration(arch: arch, data: data)
        config.epochs = epochs; config.batchSize = batchSize
        config.learningRate = lr ?? TrainingConfiguration.defaultLearningRate(arch: arch)
        config.milestones = try parsedMilestones(); config.gamma = gamma
        config.momentum = momentum; config.weightDecay = weightDecay; config.nesterov = !noNesterov
        config.seed = seed; config.trainLimit = trainLimit; config.loaderThreads = loaderThreads
        let run = try RunDirectory(runsDir + "/" + (name ?? "\(arch)-seed\(seed)"))
        let trainer = try SupervisedTrainer(config: config, run: run, resume: resume)
        print("training \(arch) (\(trainer.model.parameterCount) parameters) on \(data): \(trainer.trainLoader.dataset.count) training, \(trainer.testLoader.dataset.count) test images, \(trainer.classNames.count) classes → \(run.url.path)")
        if trainer.nextEpoch > 0 { print("resuming after epoch \(trainer.nextEpoch)") }
        try trainer.train()
        print("best test top-1 \(String(format: "%.2f", trainer.bestTop1))%; summary: \(run.file("summary.md").path)")
    }
}

/// `mmkd eval`: top-1 / top-5 of a checkpoint on a data set's test split.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluate a checkpoint (top-1, top-5, loss) on a test split.")

    @Option(help: "Architecture of the checkpoint.") var arch: String
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Data set as KIND:PATH.") var data: String
    @Option(help: "Threads decoding batches.") var loaderThreads: Int = 2

    func validate() throws {
        guard ModelZoo.names.contains(arch) else { throw ValidationError("--arch: unknown architecture '\(arch)'; known: \(ModelZoo.names.joined(separator: ", "))") }
        _ = try DatasetSpec(parsing: data)
    }

    func run() throws {
        let spec = try DatasetSpec(parsing: data)
        let (_, test) = try spec.load()
        let model = try ModelZoo.make(arch, classes: test.classCount)
        try ModelCheckpoint.load(URL(fileURLWithPath: checkpoint), into: model)
        let loader = BatchLoader(dataset: test, batchSize: 256, shuffle: false, dropLast: false, pipeline: spec.pipeline(train: false),
                                 seed: 0, workers: loaderThreads)
        let r = try Evaluation.evaluate(model, loader: loader)
        print(String(format: "%@ on %@ (%d images): top-1 %.2f%%  top-5 %.2f%%  loss %.4f", checkpoint, data, r.count, r.top1, r.top5, r.loss))
    }
}
