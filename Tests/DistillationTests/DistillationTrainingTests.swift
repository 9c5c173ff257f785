import TestSupport
import Checkpoints
import Datasets
import Distillation
import Engine
import Foundation
import Models
import NN
import XCTest

/// Distillation runs on a tiny CIFAR-10-format data set and random teachers written by the test.
final class DistillationTrainingTests: TinyCIFARTestCase {
    override var dataSeed: UInt64 { 12 }

    override func setUpWithError() throws {
        try super.setUpWithError()
        for (i, arch) in ["resnet14", "resnet8"].enumerated() {
            Initialization.seed(UInt64(100 + i))
            let model = try ModelZoo.make(arch, classes: 10)
            try ModelCheckpoint.save(model, metadata: ["arch": arch], to: URL(fileURLWithPath: folder + "/teacher\(i).safetensors"))
        }
    }

    func configuration(_ name: String) -> DistillationConfiguration { configuration(DistillationMethods.named(name)!) }

    func configuration(_ method: any DistillationMethod) -> DistillationConfiguration {
        let teachers = method.isSingleTeacher ? [TeacherSpec(arch: "resnet14", checkpoint: folder + "/teacher0.safetensors")]
            : [TeacherSpec(arch: "resnet14", checkpoint: folder + "/teacher0.safetensors"), TeacherSpec(arch: "resnet8", checkpoint: folder + "/teacher1.safetensors")]
        var c = DistillationConfiguration(student: "resnet8", data: "cifar10:\(folder!)", teachers: teachers, method: method)
        c.training.epochs = 3; c.training.batchSize = 8; c.training.milestones = [2]; c.training.seed = 5
        c.hyper.bufferSize = 16; c.hyper.metaFrequency = 2
        return c
    }

    func mmkd(_ trainer: Trainer) -> MMKDIteration { trainer.step as! MMKDIteration }

    func testKilledMMKDRunResumesBitIdentically() throws {
        let straight = try Trainer.distillation(configuration("mmkd"), run: try RunDirectory(folder + "/runs/a"), resume: false)
        try straight.train(progress: nil)

        let runB = try RunDirectory(folder + "/runs/b")
        let first = try Trainer.distillation(configuration("mmkd"), run: runB, resume: false)
        try first.train(progress: nil, stopAfter: 1)   // "killed" after epoch 1
        let resumed = try Trainer.distillation(configuration("mmkd"), run: runB, resume: true)
        XCTAssertEqual(resumed.nextEpoch, 1)
        XCTAssertEqual(mmkd(resumed).buffer.count, 16, "the hard buffer comes back")
        try resumed.train(progress: nil)

        let pairs = zip(straight.step.learner.stateDict + mmkd(straight).metaNetworks.stateDict, resumed.step.learner.stateDict + mmkd(resumed).metaNetworks.stateDict)
        for ((n1, t1), (n2, t2)) in pairs {
            XCTAssertEqual(n1, n2)
            XCTAssertEqual(t1.scalars, t2.scalars, "\(n1) differs after resuming")
        }
        XCTAssertEqual(mmkd(straight).buffer.labels, mmkd(resumed).buffer.labels)
        let a = straight.run.metrics(), b = runB.metrics()
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a.map { $0["test_top1"] as? Double }, b.map { $0["test_top1"] as? Double })
        XCTAssertEqual(a.map { $0["logit_weight_mean"] as? [Double] }, b.map { $0["logit_weight_mean"] as? [Double] })
        XCTAssertEqual(a.map { $0["feature_weight_mean"] as? [Double] }, b.map { $0["feature_weight_mean"] as? [Double] })
        XCTAssertEqual(a.first?["meta_steps"] as? Int, 3, "5 batches, meta every 2: iterations 0, 2, 4")
        for file in ["config.json", "summary.md", "best.safetensors", "last.safetensors", "distiller.safetensors", "resume.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: runB.file(file).path), file)
        }
        // Three meta steps per epoch, each an Adam step of every meta parameter, restored on resume.
        XCTAssertEqual(mmkd(resumed).metaStep.adam.states["logit.fc2.bias"]?.step, 9)
        XCTAssertEqual(mmkd(resumed).metaStep.adam.states["feature.fc1.weight"]?.step, 9)
    }

    /// `--compat official` with a capacity that is not a multiple of the batch: the buffer never
    /// counts as full, keeps every regular batch, and comes back whole on resume.
    func testOfficialBufferQuirkKeepsEveryBatchAndResumes() throws {
        var c = configuration("mmkd")
        c.hyper.compatOfficial = true; c.hyper.bufferSize = 12; c.training.epochs = 2
        let run = try RunDirectory(folder + "/runs/official")
        let first = try Trainer.distillation(c, run: run, resume: false)
        try first.train(progress: nil, stopAfter: 1)
        XCTAssertEqual(mmkd(first).buffer.count, 40, "5 batches of 8 appended whole; 8 and 16 pass 12 without landing on it")
        XCTAssertFalse(mmkd(first).buffer.isFull)
        let resumed = try Trainer.distillation(c, run: run, resume: true)
        XCTAssertEqual(mmkd(resumed).buffer.labels, mmkd(first).buffer.labels)
        try resumed.train(progress: nil)
        XCTAssertEqual(mmkd(resumed).buffer.count, 80, "two epochs of five batches")

        c.hyper.bufferSize = 16
        let even = try Trainer.distillation(c, run: try RunDirectory(folder + "/runs/official-even"), resume: false)
        try even.train(progress: nil, stopAfter: 1)
        XCTAssertEqual(mmkd(even).buffer.count, 16, "a multiple of the batch fills and then only replaces")
    }

    func testEveryMethodTrainsAndLogsItsWeights() throws {
        for method in DistillationMethods.all {
            let run = try RunDirectory(folder + "/runs/\(method.name)")
            var c = configuration(method)
            c.training.epochs = 1
            // SemCKD's β = 400 at lr 0.05 diverges within 5 batches of 8 random images (weights reach
            // NaN while the epoch's mean loss is a finite 10²⁹); the run would rightly stop.
            c.training.learningRate = 0.01
            let trainer = try Trainer.distillation(c, run: run, resume: false)
            let teachers = try trainer.distillation!.evaluateTeachers(run: run, testLoader: trainer.testLoader, progress: nil)
            XCTAssertEqual(teachers.teachers.count, c.teachers.count)
            XCTAssertEqual(teachers.ensemble.count, 16)
            try trainer.train(progress: nil)
            let m = run.metrics()
            XCTAssertEqual(m.count, 1, method.name)
            let w = m[0]["logit_weight_mean"] as? [Double]
            XCTAssertEqual(w?.count, c.teachers.count, "\(method.name) logs one logit weight per teacher")
            XCTAssertEqual(w?.reduce(0, +) ?? 0, method.name == "ebkd" ? Double(c.teachers.count - 1) : 1, accuracy: 1e-4, method.name)
            if method.usesFeatures { XCTAssertEqual((m[0]["feature_weight_mean"] as? [Double])?.count, c.teachers.count, method.name) }
            XCTAssertTrue((m[0]["train_loss"] as? Double ?? .nan).isFinite, method.name)
        }
    }

    func testAverWithBetaMatchesFeaturesWithUniformWeights() throws {
        var c = configuration("aver")
        c.training.epochs = 1
        XCTAssertNil(c.hyper.regressedMap, "plain AVER has no feature term")
        c.hyper.beta = 10
        let trainer = try Trainer.distillation(c, run: try RunDirectory(folder + "/runs/aver-beta"), resume: false)
        XCTAssertEqual(trainer.distillation!.distillationLearner.regressors.count, 2)
        var g = RandomGenerator(seed: 9)
        let x = Tensor.randomNormal([8, 3, 32, 32], generator: &g)
        let outputs = trainer.distillation!.teachers.map { $0.outputs(x) }
        let terms = trainer.distillation!.objective.terms(images: x, labels: Array(0..<8), teacherOutputs: outputs, part: .full(epoch: 1))
        let mse = (0..<2).map { k -> Float in
            let (s, t) = Tensor.matchingSpatialSize(student: trainer.distillation!.distillationLearner.student.features(x).features.dropLast().last!, teacher: outputs[k].penultimate)
            return meanSquaredError(trainer.distillation!.distillationLearner.regressors[k](s), t).item
        }
        XCTAssertEqual(terms.featureTerm!.item, mse.reduce(0, +) / 2, accuracy: 1e-4 * max(1, abs(terms.featureTerm!.item)))
        XCTAssertEqual(terms.featureWeights!.scalars, [Float](repeating: 0.5, count: 16))
        try trainer.train(progress: nil)
    }

    func testTeacherOfTheWrongArchitectureIsNamed() throws {
        var c = configuration("aver")
        c.teachers[1].arch = "resnet20"
        XCTAssertThrowsError(try Trainer.distillation(c, run: try RunDirectory(folder + "/runs/bad"), resume: false)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("teacher1.safetensors") && text.contains("resnet20"), text)
        }
        c = configuration("camkd")
        c.teachers.removeLast()
        XCTAssertThrowsError(try Trainer.distillation(c, run: try RunDirectory(folder + "/runs/bad2"), resume: false)) { error in
            XCTAssertTrue("\(error)".contains("camkd needs at least 2"), "\(error)")
        }
    }
}
