import ArgumentParser
import Datasets
import Distillation

/// The training recipe shared by `train` and `distill` (paper defaults).
struct RecipeOptions: ParsableArguments {
    @Option(help: "Data set as KIND:PATH (cifar10:DIR, cifar100:DIR, fashion-mnist[:DIR], folder:ROOT, tiny-imagenet:ROOT, stanford-dogs:ROOT).") var data: String
    @Option(parsing: .unconditional, help: "Epochs.") var epochs: Int = 240
    @Option(parsing: .unconditional, help: "Batch size.") var batchSize: Int = 64
    @Option(parsing: .unconditional, help: "Learning rate (default 0.05; 0.01 for MobileNetV2/ShuffleV1/ShuffleV2).") var lr: Float?
    @Option(help: "Epochs after which the learning rate is multiplied by --lr-decay (comma-separated).") var milestones: String = "150,180,210"
    @Option(parsing: .unconditional, help: "Learning-rate factor at each milestone.") var lrDecay: Float = 0.1
    @Option(parsing: .unconditional, help: "SGD momentum.") var momentum: Float = 0.9
    @Option(parsing: .unconditional, help: "Weight decay.") var weightDecay: Float = 5e-4
    @Flag(help: "Plain momentum instead of Nesterov.") var noNesterov = false
    @Option(help: "Seed of initialisation, batch order and augmentation.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Use a seeded random subset of this many training images per epoch (short budgets).") var trainLimit: Int?
    @Option(parsing: .unconditional, help: "Evaluate on this many test images only, spread evenly over the test set (quick runs; said in the summary).") var testLimit: Int?
    @Option(parsing: .unconditional, help: "Threads decoding and augmenting batches.") var loaderThreads: Int = 2
    @Flag(help: "Train without random crops and flips (training images go through the test pipeline).") var noAugment = false
    @Option(help: "Folder holding run directories.") var runsDir: String = "runs"
    @Option(help: "Run name (a folder under --runs-dir).") var name: String?
    @Flag(help: "Continue the run in RUNS/NAME from its last finished epoch.") var resume = false

    func validate() throws {
        if let name, let problem = RunDirectory.problem(withName: name) { throw ValidationError("--name: \(problem)") }
        guard epochs > 0 else { throw ValidationError("--epochs must be positive, got \(epochs)") }
        guard batchSize > 1 else { throw ValidationError("--batch-size must be at least 2, got \(batchSize)") }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number, got \(lr)") }
        guard lrDecay > 0 && lrDecay.isFinite else { throw ValidationError("--lr-decay must be a positive number, got \(lrDecay)") }
        guard momentum >= 0 && momentum < 1 else { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        guard weightDecay >= 0 && weightDecay.isFinite else { throw ValidationError("--weight-decay must be a number ≥ 0, got \(weightDecay)") }
        guard (try? parsedMilestones()) != nil else { throw ValidationError("--milestones must be comma-separated epoch numbers, got '\(milestones)'") }
        if let trainLimit, trainLimit <= 0 { throw ValidationError("--train-limit must be positive, got \(trainLimit)") }
        if let testLimit, testLimit <= 0 { throw ValidationError("--test-limit must be positive, got \(testLimit)") }
        guard loaderThreads > 0 else { throw ValidationError("--loader-threads must be positive, got \(loaderThreads)") }
        _ = try DatasetSpec(parsing: data)
    }

    func parsedMilestones() throws -> [Int] {
        try milestones.split(separator: ",").map { guard let v = Int($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("") }; return v }
    }

    /// The recipe for architecture `arch`.
    func configuration(arch: String) throws -> TrainingConfiguration {
        var config = TrainingConfiguration(arch: arch, data: data)
        config.epochs = epochs; config.batchSize = batchSize
        config.learningRate = lr ?? TrainingConfiguration.defaultLearningRate(arch: arch)
        config.milestones = try parsedMilestones(); config.lrDecay = lrDecay
        config.momentum = momentum; config.weightDecay = weightDecay; config.nesterov = !noNesterov
        config.seed = seed; config.trainLimit = trainLimit; config.testLimit = testLimit; config.loaderThreads = loaderThreads
        config.augment = !noAugment
        return config
    }
}
