import Datasets
import Distillation
import Foundation
import Engine
import Models
import NN
import TestSupport
import XCTest

/// Data-parallel distillation against one process with the whole batch, in one process: two
/// threads (`ThreadReplicaGroup`), each with its own copy of the fixture's learner, teachers and
/// meta networks and half of every batch, must give the whole batch's loss, gradients and MMKD
/// hypergradients.
final class DataParallelObjectiveTests: XCTestCase {
    typealias Fixture = DistillationFixtureTests.Fixture

    /// Loss and learner gradients of the regular step (per parameter name).
    static func regular(_ objective: MultiTeacherObjective, _ f: Fixture, rows: Range<Int>) -> (Float, [String: Tensor]) {
        let learner = objective.learner
        learner.train()
        let x = f.x.slice(axis: 0, rows), y = Array(f.y[rows])
        let terms = objective.terms(images: x, labels: y, teacherOutputs: objective.teachers.map { $0.outputs(x) }, part: .full(epoch: 1), indices: Array(rows))
        let named = learner.namedParameters
        let g = Replicas.averaged(gradients(of: terms.total, wrt: named.map(\.1)))
        return (terms.total.item, Dictionary(uniqueKeysWithValues: zip(named.map(\.0), g)))
    }

    /// The meta gradients of one MMKD meta step on the hard batch.
    static func meta(_ objective: MultiTeacherObjective, _ f: Fixture, rows: Range<Int>) -> [String: Tensor] {
        objective.learner.train()
        let sgd = OptimizerDriver(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true))
        let x = f.xh.slice(axis: 0, rows), y = Array(f.yh[rows])
        let step = MMKDMetaStep(hyper: objective.hyper)
        return step.metaGradients(objective: objective, optimizer: sgd, images: x, labels: y, teacherOutputs: objective.teachers.map { $0.outputs(x) })
    }

    /// The method's objective as `mmkd distill` builds it (`DistillationStep.make`), on the
    /// fixture's teachers (the first alone for single-teacher methods), seeded identically.
    static func objective(method name: String, _ f: Fixture) throws -> MultiTeacherObjective {
        let method = try DistillationMethods.method(named: name)
        let teachers = method.isSingleTeacher ? [f.teachers[0]] : f.teachers
        var config = DistillationConfiguration(student: "resnet8", data: "fixture", teachers: teachers.map { TeacherSpec(arch: $0.arch, checkpoint: "fixture") },
                                               method: method)
        config.training.batchSize = 8
        Initialization.seed(0)
        let student = try ModelZoo.make("resnet8", classes: 10)
        let probe = f.x.slice(axis: 0, 0..<2)
        student.eval()
        let features = withoutGrad { student.features(probe).features }
        student.train()
        let setup = MethodSetup(studentFeatures: features, teacherOutputs: teachers.map { $0.outputs(probe) }, trainingLabels: f.y + f.yh,
                                classes: 10, batchSize: 8, seed: 0, hyper: config.hyper)
        return DistillationStep.make(config: config, student: student, teachers: teachers, setup: setup).objective
    }

    func check(method: String) throws {
        let whole = try Fixture()
        let (loss, grads) = Self.regular(try Self.objective(method: method, whole), whole, rows: 0..<8)
        let metaGrads = method == "mmkd" ? Self.meta(try Self.objective(method: method, whole), whole, rows: 0..<8) : [:]
        // Each replica its own teachers, learner and meta networks (their caches and buffers are not shared).
        let copies = try (0..<2).map { _ in let f = try Fixture(); return (f, try Self.objective(method: method, f), try Self.objective(method: method, f)) }
        nonisolated(unsafe) let shared = copies
        let parts = ThreadReplicaGroup.run(size: 2) { group in
            Replicas.with(group) {
                let (f, objective, metaObjective) = shared[group.rank]
                let rows = group.share(of: 8)
                let (l, g) = Self.regular(objective, f, rows: rows)
                return (l, g, method == "mmkd" ? Self.meta(metaObjective, f, rows: rows) : [:])
            }
        }
        XCTAssertEqual((parts[0].0 + parts[1].0) / 2, loss, accuracy: 1e-5 * abs(loss), "\(method) loss")
        // A gradient that is zero in exact arithmetic (a convolution's bias before batch norm) is
        // round-off on both sides: compared against the scale of all the gradients.
        let scale = grads.values.map { Double($0.square().sum().item) }.reduce(0, +).squareRoot()
        for part in parts {
            for (name, g) in grads { assertClose(part.1[name]!, g, tolerance: 1e-4, absolute: 1e-6 * scale, "\(method) ∂\(name)") }
            for (name, g) in metaGrads { assertClose(part.2[name]!, g, tolerance: 1e-4, absolute: 1e-9, "\(method) hypergradient \(name)") }
        }
    }

    func testEveryMethodMatchesTheWholeBatch() throws {
        for method in DistillationMethods.all.map(\.name) { try check(method: method) }
    }
}

/// Supervised training's gradients after five SGD steps on TinyCIFAR batches (not augmented: see
/// `DataParallelTests` on why augmented batches are not a test of exactness), every parameter
/// against its own norm.
final class DataParallelNetworkTests: XCTestCase {
    static func model() throws -> any FeatureClassifier {
        Initialization.seed(7)
        let model = try ModelZoo.make("resnet8", classes: 10)
        model.train()
        return model
    }

    /// The gradients after `steps` SGD steps (momentum, Nesterov, weight decay) on batches of 8, on the next batch.
    static func gradients(_ model: any FeatureClassifier, rows: Range<Int>, _ x: Tensor, _ y: [Int], steps: Int) -> ([Float], [String: Tensor]) {
        var sgd = OptimizerDriver(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true))
        var losses: [Float] = []
        for s in 0...steps {
            let batch = rows.lowerBound + 8 * s ..< rows.upperBound + 8 * s
            let loss = crossEntropy(model(x.slice(axis: 0, batch)), labels: Array(y[batch]))
            losses.append(loss.item)
            if s == steps {
                let named = model.namedParameters
                return (losses, Dictionary(uniqueKeysWithValues: zip(named.map(\.0), Replicas.averaged(Engine.gradients(of: loss, wrt: named.map(\.1))))))
            }
            sgd.minimize(loss, of: model)
        }
        fatalError()
    }

    func testSupervisedGradientsMatchTheWholeBatch() throws {
        let steps = 4
        let folder = NSTemporaryDirectory() + "mmkd-dpnet-\(UUID().uuidString)"
        try TinyCIFAR.write(to: folder, seed: 0)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let spec = try DatasetSpec(parsing: "cifar10:\(folder)")
        let train = try spec.load().train
        let batch = try BatchLoader(dataset: train, batchSize: 40, shuffle: true, dropLast: false, pipeline: spec.pipeline(train: false), seed: 0, workers: 1).batches(epoch: 0).next()!
        let x = batch.images, y = batch.labels
        let (losses, whole) = Self.gradients(try Self.model(), rows: 0..<8, x, y, steps: steps)
        nonisolated(unsafe) let replicas = try (0..<2).map { _ in try Self.model() }
        let parts = ThreadReplicaGroup.run(size: 2) { group in
            Replicas.with(group) { DataParallelNetworkTests.gradients(replicas[group.rank], rows: group.share(of: 8), x, y, steps: steps) }
        }
        for (l, (a, b)) in zip(losses, zip(parts[0].0, parts[1].0)) { XCTAssertEqual((a + b) / 2, l, accuracy: 1e-6 * l) }
        for part in parts {
            for (name, t) in whole.sorted(by: { $0.key < $1.key }) { assertClose(part.1[name]!, t, tolerance: 1e-4, absolute: 1e-9, "∂\(name)") }
        }
    }
}
