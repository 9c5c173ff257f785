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

    @Option(help: "Architecture (\(ModelZoo.allNames.joined(separator: ", "))).") var arch: String
    @OptionGroup var recipe: RecipeOptions

    func validate() throws {
        guard ModelZoo.allNames.contains(arch) else { throw ValidationError("--arch: unknown architecture '\(arch)'; known: \(ModelZoo.allNames.joined(separator: ", "))") }
    }

    func run() throws {
        let config = try recipe.configuration(arch: arch)
        let run = try RunDirectory(recipe.runsDir + "/" + (recipe.name ?? "\(arch)-seed\(recipe.seed)"), exclusive: ParallelJob.isWriter)
        let trainer = try Trainer.supervised(config, run: run, resume: recipe.resume, replicas: ParallelJob.replicas)
        ParallelJob.say("training \(arch) (\(trainer.model.parameterCount) parameters) on \(config.data): \(trainer.trainLoader.dataset.count) training, \(trainer.testLoader.dataset.count) test images, \(trainer.classNames.count) classes\(processes) → \(run.url.path)")
        if trainer.nextEpoch > 0 { ParallelJob.say("resuming after epoch \(trainer.nextEpoch)") }
        try trainer.train()
        ParallelJob.say("best test top-1 \(String(format: "%.2f", trainer.bestTop1))%; summary: \(run.file("summary.md").path)")
    }
}

/// `mmkd eval`: top-1 / top-5 of a checkpoint on a data set's test split.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluate a checkpoint (top-1, top-5, loss) on a test split.")

    @Option(help: "Architecture of the checkpoint.") var arch: String
    @Option(help: "Checkpoint (.safetensors or a PyTorch .pth).") var checkpoint: String
    @Option(help: "Data set as KIND:PATH.") var data: String
    @Option(parsing: .unconditional, help: "Evaluate on this many test images only, spread evenly over the test set.") var testLimit: Int?
    @Option(parsing: .unconditional, help: "Threads decoding batches.") var loaderThreads: Int = 2

    func validate() throws {
        guard ModelZoo.allNames.contains(arch) else { throw ValidationError("--arch: unknown architecture '\(arch)'; known: \(ModelZoo.allNames.joined(separator: ", "))") }
        if let testLimit, testLimit <= 0 { throw ValidationError("--test-limit must be positive, got \(testLimit)") }
        guard loaderThreads > 0 else { throw ValidationError("--loader-threads must be positive, got \(loaderThreads)") }
        _ = try DatasetSpec(parsing: data)
    }

    func run() throws {
        let spec = try DatasetSpec(parsing: data)
        let (_, test) = try spec.load()
        let model = try ModelZoo.make(arch, classes: test.classCount)
        try ModelCheckpoint.load(URL(fileURLWithPath: checkpoint), into: model)
        let images: any ImageDataset = testLimit.map { SubsetDataset(test, spreadOver: $0) } ?? test
        let loader = BatchLoader(dataset: images, batchSize: 256, shuffle: false, dropLast: false, pipeline: spec.pipeline(train: false),
                                 seed: 0, workers: loaderThreads)
        let r = try Evaluation.evaluate(model, loader: loader)
        print(String(format: "%@ on %@ (%d images): top-1 %.2f%%  top-5 %.2f%%  loss %.4f", checkpoint, data, r.count, r.top1, r.top5, r.loss))
    }
}
