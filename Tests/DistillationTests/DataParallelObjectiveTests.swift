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

    /// Each parameter moved by `scale` of itself times uniform noise in [−1, 1], drawn from `seed`
    /// in the order given.
    static func moved(_ parameters: [(String, Tensor)], seed: UInt64, scale: Float) -> [String: Tensor] {
        var g = RandomGenerator(seed: seed)
        return Dictionary(uniqueKeysWithValues: parameters.map { name, t in
            (name, (t + t * Tensor.randomUniform(t.shape, low: -1, high: 1, generator: &g).scaled(by: scale)).detached())
        })
    }

    /// Moves every learner parameter by `scale` of itself times seeded noise (`moved`).
    static func perturb(_ objective: MultiTeacherObjective, seed: UInt64, scale: Float) {
        objective.learner.update(parameters: moved(objective.learner.namedParameters, seed: seed, scale: scale))
    }

    /// The objective on which the MMKD meta step is compared: the fixture's, its learner moved by
    /// 1e-3 (seed 13) to a point where the hypergradient is well conditioned. The look-ahead steps
    /// (lr 0.05) pass ReLU kinks of resnet8 often: at the fixture's own point, one process whose
    /// parameters are moved by 1e-7 gets a feature-network hypergradient 9.5% away (logit network
    /// 0.8%) for one noise seed in three, and the same holds at two of four nearby points; a
    /// comparison there measures where round-off lands, not the implementation.
    static func metaObjective(_ f: Fixture) throws -> MultiTeacherObjective {
        let objective = try Self.objective(method: "mmkd", f)
        Self.perturb(objective, seed: 13, scale: 1e-3)
        return objective
    }

    /// Relative L2 distance between two sets of named tensors, the largest over the names.
    static func distance(_ a: [String: Tensor], _ b: [String: Tensor]) -> Double {
        b.map { name, t in
            let x = a[name]!.scalars, y = t.scalars
            var d = 0.0, n = 0.0
            for j in x.indices { d += Double(x[j] - y[j]) * Double(x[j] - y[j]); n += Double(y[j]) * Double(y[j]) }
            return (d / max(n, 1e-30)).squareRoot()
        }.max() ?? 0
    }

    func check(method: String) throws {
        let whole = try Fixture()
        let (loss, grads) = Self.regular(try Self.objective(method: method, whole), whole, rows: 0..<8)
        let isMMKD = method == "mmkd"
        let metaGrads = isMMKD ? Self.meta(try Self.metaObjective(whole), whole, rows: 0..<8) : [:]
        if isMMKD {
            // The premise: round-off alone (1e-7 of every parameter, four seeds) moves one process's
            // hypergradient by well under the tolerance at this point.
            for seed: UInt64 in 1...4 {
                let moved = try Self.metaObjective(whole)
                Self.perturb(moved, seed: seed, scale: 1e-7)
                let d = Self.distance(Self.meta(moved, whole, rows: 0..<8), metaGrads)
                XCTAssertLessThan(d, 5e-5, "the comparison point is ill-conditioned on this machine (noise seed \(seed) moves one process's hypergradient by \(d)): choose another offset in metaObjective")
            }
        }
        // Each replica its own teachers, learner and meta networks (their caches and buffers are not shared).
        let copies = try (0..<2).map { _ in
            let f = try Fixture()
            return (f, try Self.objective(method: method, f), isMMKD ? try Self.metaObjective(f) : nil)
        }
        nonisolated(unsafe) let shared = copies
        let parts = ThreadReplicaGroup.run(size: 2) { group in
            Replicas.with(group) {
                let (f, objective, metaObjective) = shared[group.rank]
                let rows = group.share(of: 8)
                let (l, g) = Self.regular(objective, f, rows: rows)
                return (l, g, metaObjective.map { Self.meta($0, f, rows: rows) } ?? [:])
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

/// Supervised training's gradients along a real trajectory: one process takes SGD steps on
/// TinyCIFAR batches of 8 (not augmented: see `DataParallelTests` on why augmented batches are not
/// a test of exactness), and at every step's parameters two replicas with half the batch each must
/// give its loss and gradients, every parameter against its own norm.
///
/// The replicas are given the single process's parameters at each step rather than taking their
/// own steps: at the recipe's learning rate, parameters that differ by round-off (1e-7) cross a
/// ReLU kink of this network within a step or two (one element of layer 2's residual sum sits
/// 2e-6 from zero after the first step, and a 1e-7 change of the stem's weights flips it, which
/// moves the stem's gradient by 1.7% in one process alone), so comparing two trajectories here
/// would measure the network's kinks, not the implementation.
final class DataParallelNetworkTests: XCTestCase {
    static func model() throws -> any FeatureClassifier {
        Initialization.seed(7)
        let model = try ModelZoo.make("resnet8", classes: 10)
        model.train()
        return model
    }

    /// Loss and averaged gradients (per parameter name) of `model` on `rows` of the batch.
    static func gradients(_ model: any FeatureClassifier, rows: Range<Int>, _ x: Tensor, _ y: [Int]) -> (Float, [String: Tensor]) {
        let loss = crossEntropy(model(x.slice(axis: 0, rows)), labels: Array(y[rows]))
        let named = model.namedParameters
        return (loss.item, Dictionary(uniqueKeysWithValues: zip(named.map(\.0), Replicas.averaged(Engine.gradients(of: loss, wrt: named.map(\.1))))))
    }

    /// A copy of `model`'s parameters (its values now, not the tensors the optimiser will replace).
    static func snapshot(_ model: any FeatureClassifier) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.0, Tensor($0.1.scalars, shape: $0.1.shape)) })
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
        // One process: the parameters, loss and gradients at each step of its trajectory.
        let single = try Self.model()
        var sgd = OptimizerDriver(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true))
        var trajectory: [(parameters: [String: Tensor], loss: Float, gradients: [String: Tensor])] = []
        for s in 0...steps {
            let parameters = Self.snapshot(single)
            let (loss, g) = Self.gradients(single, rows: 8 * s ..< 8 * s + 8, x, y)
            trajectory.append((parameters, loss, g))
            sgd.minimize(crossEntropy(single(x.slice(axis: 0, 8 * s ..< 8 * s + 8)), labels: Array(y[8 * s ..< 8 * s + 8])), of: single)
        }
        XCTAssertGreaterThan(trajectory[0].loss - trajectory[steps].loss, 0.05, "the steps should train: losses \(trajectory.map(\.loss))")
        nonisolated(unsafe) let replicas = try (0..<2).map { _ in try Self.model() }
        nonisolated(unsafe) let points = trajectory.map(\.parameters)
        let parts = ThreadReplicaGroup.run(size: 2) { group in
            Replicas.with(group) {
                let model = replicas[group.rank]
                return points.enumerated().map { s, parameters in
                    model.update(parameters: parameters)
                    let rows = group.share(of: 8)
                    return DataParallelNetworkTests.gradients(model, rows: rows.lowerBound + 8 * s ..< rows.upperBound + 8 * s, x, y)
                }
            }
        }
        var excused: [Int] = []
        for (s, point) in trajectory.enumerated() {
            XCTAssertEqual((parts[0][s].0 + parts[1][s].0) / 2, point.loss, accuracy: 1e-6 * point.loss, "loss at step \(s)")
            var tolerance = 1e-4
            let d = parts.map { DataParallelObjectiveTests.distance($0[s].1, point.gradients) }.max()!
            if d > tolerance {
                // Beyond 1e-4: the step counts only if one process alone, its parameters moved by 1e-6
                // (eight noise seeds), is that far from itself (a kink), and then must be within 3× of that.
                let sensitivity = try (1...8).map { seed -> Double in
                    let moved = try Self.model()
                    moved.update(parameters: DataParallelObjectiveTests.moved(point.parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                                                              seed: UInt64(seed), scale: 1e-6))
                    return DataParallelObjectiveTests.distance(Self.gradients(moved, rows: 8 * s ..< 8 * s + 8, x, y).1, point.gradients)
                }.max()!
                tolerance = max(tolerance, 3 * sensitivity)
                excused.append(s)
                print("step \(s): the replicas' gradients are \(d) from one process's, which round-off alone moves by \(sensitivity) there")
            }
            for part in parts {
                for (name, t) in point.gradients.sorted(by: { $0.key < $1.key }) {
                    assertClose(part[s].1[name]!, t, tolerance: Float(tolerance), absolute: 1e-9, "∂\(name) at step \(s)")
                }
            }
        }
        XCTAssertLessThanOrEqual(excused.count, 1, "steps held to a looser tolerance than 1e-4: \(excused)")
    }
}
