import Checkpoints
import Datasets
import Distillation
import Engine
import Foundation
import Models
import NN
import TestSupport
import XCTest

/// Training on a tiny CIFAR-10-format data set written by the test.
final class SupervisedTrainingTests: TinyCIFARTestCase {
    override var dataSeed: UInt64 { 11 }

    func configuration() -> TrainingConfiguration {
        var c = TrainingConfiguration(arch: "resnet8", data: "cifar10:\(folder!)")
        c.epochs = 3; c.batchSize = 16; c.milestones = [2]; c.seed = 5; c.loaderThreads = 2
        return c
    }

    func testKilledRunResumesBitIdentically() throws {
        let straight = try Trainer.supervised(configuration(), run: try RunDirectory(folder + "/runs/a"), resume: false)
        try straight.train(progress: nil)

        let runB = try RunDirectory(folder + "/runs/b")
        let first = try Trainer.supervised(configuration(), run: runB, resume: false)
        try first.train(progress: nil, stopAfter: 1)          // "killed" after epoch 1
        let resumed = try Trainer.supervised(configuration(), run: runB, resume: true)
        XCTAssertEqual(resumed.nextEpoch, 1)
        try resumed.train(progress: nil)

        for ((n1, t1), (n2, t2)) in zip(straight.model.stateDict, resumed.model.stateDict) {
            XCTAssertEqual(n1, n2)
            XCTAssertEqual(t1.scalars, t2.scalars, "\(n1) differs after resuming")
        }
        let a = straight.run.metrics().map { $0["test_top1"] as? Double }, b = runB.metrics().map { $0["test_top1"] as? Double }
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a, b)
        let rates = runB.metrics().compactMap { $0["lr"] as? Double }
        XCTAssertEqual(rates.count, 3)
        for (r, e) in zip(rates, [0.05, 0.05, 0.005]) { XCTAssertEqual(r, e, accuracy: 1e-8) }
        for name in ["config.json", "summary.md", "best.safetensors", "last.safetensors", "resume.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: runB.file(name).path), name)
        }
        // The last checkpoint loads into a fresh model and reproduces the evaluation.
        let model = try ModelZoo.make("resnet8", classes: 10)
        let metadata = try ModelCheckpoint.load(runB.file("last.safetensors"), into: model)
        XCTAssertEqual(metadata["epoch"], "3")
        let eval = try Evaluation.evaluate(model, loader: resumed.testLoader)
        XCTAssertEqual(eval.top1, b.last!!, accuracy: 1e-9)
    }

    /// A network with dropout (torchvision's MobileNetV2 classifier) resumes bit-identically: its
    /// masks come from the loop's per-batch stream.
    func testARunWithDropoutResumesBitIdentically() throws {
        var c = configuration()
        c.arch = "MobileNetV2_Imagenet"; c.epochs = 2; c.milestones = []
        let straight = try Trainer.supervised(c, run: try RunDirectory(folder + "/runs/d-a"), resume: false)
        try straight.train(progress: nil)
        let runB = try RunDirectory(folder + "/runs/d-b")
        try Trainer.supervised(c, run: runB, resume: false).train(progress: nil, stopAfter: 1)
        let resumed = try Trainer.supervised(c, run: runB, resume: true)
        try resumed.train(progress: nil)
        for ((name, a), (_, b)) in zip(straight.model.stateDict, resumed.model.stateDict) {
            XCTAssertEqual(a.scalars, b.scalars, "\(name) differs after resuming")
        }
        // The masks are live in training and absent in evaluation.
        let model = resumed.model, x = Tensor.randomNormal([4, 3, 32, 32], generator: &Initialization.generator)
        XCTAssertEqual(model.namedChildren.map(\.0).suffix(2), ["classifier.0", "classifier.1"])
        model.train()
        let (a, b) = withoutGrad { (DropoutNoise.with(seed: 1) { model(x) }.scalars, DropoutNoise.with(seed: 2) { model(x) }.scalars) }
        XCTAssertNotEqual(a, b)
        model.eval()
        XCTAssertEqual(withoutGrad { DropoutNoise.with(seed: 1) { model(x) }.scalars }, withoutGrad { DropoutNoise.with(seed: 2) { model(x) }.scalars })
    }

    func testConfigurationsOfEarlierVersionsStillRead() throws {
        // Before, the learning-rate decay was written as `gamma` (the cross-entropy weight's name in distill).
        var c = configuration()
        c.lrDecay = 0.2
        var object = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(c)) as! [String: Any]
        XCTAssertEqual(object["lrDecay"] as? Double, 0.2)
        object["gamma"] = object.removeValue(forKey: "lrDecay")
        let legacy = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfiguration.self, from: Data(legacy.utf8)), c)
        XCTAssertEqual(c.differences(from: legacy), [], "a legacy file's settings compare as today's")
        var other = c
        other.testLimit = 100
        XCTAssertEqual(other.differences(from: legacy), ["testLimit unset (now 100)"])
    }

    func testResumeRefusesAnotherConfiguration() throws {
        let run = try RunDirectory(folder + "/runs/c")
        try Trainer.supervised(configuration(), run: run, resume: false).train(progress: nil, stopAfter: 1)
        var other = configuration()
        other.learningRate = 0.1
        XCTAssertThrowsError(try Trainer.supervised(other, run: run, resume: true)) { error in
            XCTAssertTrue("\(error)".contains("resume.safetensors") && "\(error)".contains("other settings: learningRate 0.05 (now 0.1)"), "\(error)")
        }
    }

    /// A diverging learning rate stops the run, naming the epoch; no checkpoint of non-finite
    /// weights is written (before, last.safetensors was 96% NaN after a finite-loss epoch).
    func testDivergenceStopsWithoutWritingNonFiniteCheckpoints() throws {
        var c = configuration()
        c.learningRate = 1e6; c.milestones = []
        let run = try RunDirectory(folder + "/runs/diverge")
        let trainer = try Trainer.supervised(c, run: run, resume: false)
        XCTAssertThrowsError(try trainer.train(progress: nil)) { error in
            XCTAssertTrue("\(error)".contains("non-finite") || "\(error)".contains("the loss became"), "\(error)")
        }
        for name in ["last.safetensors", "best.safetensors"] where FileManager.default.fileExists(atPath: run.file(name).path) {
            let tensors = try SafeTensors.read(run.file(name)).tensors
            XCTAssertFalse(tensors.values.contains { $0.scalars.contains { !$0.isFinite } }, "\(name) holds only finite values")
        }
    }

    func testTrainingReducesTheLoss() throws {
        var c = configuration()
        c.epochs = 4; c.milestones = []
        let trainer = try Trainer.supervised(c, run: try RunDirectory(folder + "/runs/d"), resume: false)
        try trainer.train(progress: nil)
        let losses = trainer.run.metrics().compactMap { $0["train_loss"] as? Double }
        XCTAssertLessThan(losses.last!, losses.first!)
    }
}
