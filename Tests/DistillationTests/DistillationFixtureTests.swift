import Checkpoints
import Distillation
import Engine
import Foundation
import Models
import NN
import TestSupport
import XCTest

/// MMKD's hypergradient and the baselines' teacher weights against the independent PyTorch
/// implementation (scripts/mmkd_torch.py via scripts/make_distillation_fixtures.py).
final class DistillationFixtureTests: XCTestCase {
    struct Fixture {
        let state: [String: Tensor]
        let expected: [String: Any]
        let teachers: [FrozenTeacher]
        let x: Tensor, y: [Int], xh: Tensor, yh: [Int]

        init() throws {
            let url = Bundle.module.url(forResource: "distillation", withExtension: "pth", subdirectory: "Fixtures")!
            state = Dictionary(try TorchCheckpoint.read(url).tensors, uniquingKeysWith: { a, _ in a })
            expected = try JSONSerialization.jsonObject(with: Data(contentsOf: Bundle.module.url(forResource: "distillation", withExtension: "json", subdirectory: "Fixtures")!)) as! [String: Any]
            var teachers: [FrozenTeacher] = []
            for (i, arch) in ["resnet14", "resnet8"].enumerated() {
                let model = try ModelZoo.make(arch, classes: 10)
                model.load(Fixture.prefixed(state, "teacher\(i)."))
                teachers.append(FrozenTeacher(arch: arch, model: model, source: "fixture"))
            }
            self.teachers = teachers
            x = state["x"]!; xh = state["xh"]!
            y = state["y"]!.scalars.map { Int($0) }; yh = state["yh"]!.scalars.map { Int($0) }
        }

        static func prefixed(_ s: [String: Tensor], _ p: String) -> [String: Tensor] {
            Dictionary(uniqueKeysWithValues: s.filter { $0.key.hasPrefix(p) }.map { (String($0.key.dropFirst(p.count)), $0.value) })
        }

        func objective(method: String, form: FeatureRegressor.Form) throws -> MultiTeacherObjective {
            Initialization.seed(0)
            let student = try ModelZoo.make("resnet8", classes: 10)
            let learner = DistillationLearner(student: student, regressors: (0..<2).map { _ in FeatureRegressor(studentChannels: 64, teacherChannels: 64, form: form) })
            let ls = Fixture.prefixed(state, "\(form.rawValue).learner.")
            try learner.validate(ls)
            learner.load(ls)
            var hyper = try DistillationHyperparameters(methodNamed: method)
            hyper.regressor = form
            var nets: MMKDMetaNetworks? = nil
            if method == "mmkd" {
                nets = MMKDMetaNetworks(teachers: 2, classes: 10, batchSize: 8)
                let ms = Fixture.prefixed(state, "\(form.rawValue).meta.")
                try nets!.validate(ms)
                nets!.load(ms)
            }
            return MultiTeacherObjective(hyper: hyper, learner: learner, teachers: teachers, metaParts: nets)
        }
    }

    /// ‖a − b‖ ≤ tolerance·‖b‖ (and elementwise sizes agree).
    /// With FIXTURE_STRICT set every comparison fails, printing its relative error.
    func assertClose(_ a: [Float], _ b: [Double], _ tolerance: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let strict = ProcessInfo.processInfo.environment["FIXTURE_STRICT"] != nil
        TestSupport.assertClose(a.map(Double.init), b, tolerance: strict ? 0 : tolerance, normFloor: 1e-30, what, file: file, line: line)
    }

    func checkMetaStep(form: FeatureRegressor.Form) throws {
        let f = try Fixture()
        let objective = try f.objective(method: "mmkd", form: form)
        let expected = f.expected[form.rawValue] as! [String: Any]
        let learner = objective.learner
        learner.train()
        let tx = f.teachers.map { $0.outputs(f.x) }, th = f.teachers.map { $0.outputs(f.xh) }
        let terms = objective.terms(images: f.x, labels: f.y, teacherOutputs: tx, part: .full(epoch: 0))
        XCTAssertEqual(Double(terms.total.item), expected["regular_loss"] as! Double, accuracy: 1e-4 * abs(expected["regular_loss"] as! Double))
        assertClose(terms.logitWeights!.scalars, expected["logit_weights"] as! [Double], 1e-5, "logit weights")
        assertClose(terms.featureWeights!.scalars, expected["feature_weights"] as! [Double], 1e-5, "feature weights")
        var sgd = OptimizerDriver(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true))
        sgd.minimize(terms.total, of: learner)
        let after = Dictionary(uniqueKeysWithValues: learner.stateDict)
        for (name, values) in expected["after_regular"] as! [String: [Double]] {
            assertClose(Array(after[name]!.scalars.prefix(values.count)), values, 1e-5, "\(name) after the regular step")
        }
        var step = MMKDMetaStep(hyper: objective.hyper)
        let before = learner.snapshot()
        let grads = step.run(objective: objective, optimizer: sgd, images: f.xh, labels: f.yh, teacherOutputs: th)
        // The truth is float64; every meta-network parameter's hypergradient matches it to 1e-4
        // relative (we: logit network ≤ 2e-6; feature network ≤ 1.7e-5 with the 1×1 regressors,
        // ≤ 8.4e-5 with the convs regressors). The feature network's margin is thin by nature, not
        // by error: scripts/hypergradient_conditioning.sh shows the value is barely determined by
        // float32 inputs (PyTorch's own float32 result misses the float64 one by 1.4e-4 here with
        // the 1×1 regressors and by up to 5e-3 at other seeds; a 1e-6 relative change of the
        // learner's parameters moves the float64 value by 1e-2 to 4e-1: ReLU kinks on top of
        // train-mode BN's cancellations), and with oneDNN's direct kernels for every convolution
        // (MMKD_WINOGRAD=0) the convs case is 2.2e-4 off, against 8.4e-5 with the default Winograd
        // weight gradient of the regressors' 3×3 convolution. On an AVX-512 CPU (oneDNN's 16-wide
        // kernels, other summation orders) the convs case's feature network lands 1.0e-2 to 2.5e-2
        // off, the same with Winograd on or off and with one thread or two: there it is checked at
        // 5e-2, the scale a 1e-6 perturbation of the inputs moves it by. With OpenBLAS's AVX-512
        // kernels as well (the engine selects them by CPU feature, `BLASCore`), the 1×1 case's
        // feature network lands 1.5e-4 off (feature.fc2.weight), PyTorch's own float32 distance
        // (1.4e-4): there it is checked at 3e-4; everything else stays 1e-4.
        let avx512 = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains("avx512f") ?? false
        for (name, values) in expected["meta_gradients"] as! [String: [Double]] {
            let tolerance = avx512 && name.hasPrefix("feature.") ? (form == .convs ? 5e-2 : 3e-4) : 1e-4
            assertClose(grads[name]!.scalars, values, tolerance, "\(form.rawValue) hypergradient of \(name)")
        }
        for (name, t) in learner.stateDict { XCTAssertEqual(t.scalars, before[name]!.scalars, "\(name) rolled back") }
    }

    func testMMKDHypergradientMatchesPyTorchWithOneByOneRegressors() throws { try checkMetaStep(form: .oneByOne) }
    func testMMKDHypergradientMatchesPyTorchWithConvsRegressors() throws { try checkMetaStep(form: .convs) }

    func testBaselineWeightsAndLossesMatchPyTorch() throws {
        let f = try Fixture()
        let base = f.expected["baselines"] as! [String: Any]
        let tx = f.teachers.map { $0.outputs(f.x) }
        assertClose(TeacherWeighting.entropy(teacherLogits: tx.map(\.logits)).scalars, base["ebkd_weights"] as! [Double], 1e-5, "EBKD weights")
        assertClose(TeacherWeighting.confidence(logits: tx.map(\.logits), labels: f.y).scalars, base["camkd_logit_weights"] as! [Double], 1e-5, "CA-MKD logit weights")
        for method in ["aver", "ebkd", "camkd"] {
            let objective = try f.objective(method: method, form: .convs)
            objective.learner.train()
            let terms = objective.terms(images: f.x, labels: f.y, teacherOutputs: tx, part: .full(epoch: 1))
            let want = base["\(method)_loss"] as! Double
            XCTAssertEqual(Double(terms.total.item), want, accuracy: 1e-4 * abs(want), "\(method) loss")
            if method == "camkd" {
                assertClose(terms.featureWeights!.scalars, base["camkd_feature_weights"] as! [Double], 1e-4, "CA-MKD feature weights")
            }
        }
        for (method, key) in [("aekd-logits", "aekd_logit_weights"), ("aekd-feature", "aekd_feature_weights")] {
            let objective = try f.objective(method: method, form: .convs)
            objective.learner.train()
            let terms = objective.terms(images: f.x, labels: f.y, teacherOutputs: tx, part: .full(epoch: 1))
            let w = method == "aekd-logits" ? terms.logitWeights! : terms.featureWeights!
            assertClose(Array(w.scalars.prefix(2)), base[key] as! [Double], 1e-4, "\(method) weights")
        }
        let vectors = (base["svm_vectors"] as! [[Double]])
        let svm = OneClassSVM.teacherWeights(vectors: vectors)
        assertClose(svm.map(Float.init), base["svm_weights"] as! [Double], 1e-5, "one-class SVM weights (3 points, one at its bound)")
    }

    func testFirstOrderHypergradientPointsLikeTheExactOne() throws {
        let f = try Fixture()
        let objective = try f.objective(method: "mmkd", form: .oneByOne)
        objective.learner.train()
        let th = f.teachers.map { $0.outputs(f.xh) }
        let sgd = OptimizerDriver(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true))
        let snapshot = objective.learner.snapshot()
        var hyper = objective.hyper
        let exact = MMKDMetaStep(hyper: hyper).metaGradients(objective: objective, optimizer: sgd, images: f.xh, labels: f.yh, teacherOutputs: th)
        objective.learner.restore(snapshot)
        hyper.hypergradient = .firstOrder
        let approx = MMKDMetaStep(hyper: hyper).metaGradients(objective: objective, optimizer: sgd, images: f.xh, labels: f.yh, teacherOutputs: th)
        objective.learner.restore(snapshot)
        for net in ["logit", "feature"] {
            let names = exact.keys.filter { $0.hasPrefix(net) }.sorted()
            let a = names.flatMap { exact[$0]!.scalars.map(Double.init) }, b = names.flatMap { approx[$0]!.scalars.map(Double.init) }
            let dot = zip(a, b).map { $0 * $1 }.reduce(0, +)
            let cosine = dot / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
            XCTAssertGreaterThan(cosine, 0.9, "\(net) network: cosine of first-order and exact hypergradients")
        }
    }

    func testOfficialCompatibilityKeepsOneBatchNormUpdateAndRawSimilarities() throws {
        let f = try Fixture()
        let objective = try f.objective(method: "mmkd", form: .oneByOne)
        var hyper = objective.hyper
        hyper.compatOfficial = true
        hyper.regressor = .convs
        XCTAssertEqual(hyper.effectiveRegressor, .oneByOne, "the official --convs never takes effect")
        let official = MultiTeacherObjective(hyper: hyper, learner: objective.learner, teachers: f.teachers, metaParts: objective.metaParts)
        official.learner.train()
        let th = f.teachers.map { $0.outputs(f.xh) }
        let before = official.learner.snapshot()
        _ = withoutGrad { official.terms(images: f.xh, labels: f.yh, teacherOutputs: th, part: .matching) }
        let oneUpdate = Dictionary(uniqueKeysWithValues: official.learner.namedBuffers)
        official.learner.restore(before)
        var step = MMKDMetaStep(hyper: hyper)
        step.run(objective: official, optimizer: OptimizerDriver(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true)),
                 images: f.xh, labels: f.yh, teacherOutputs: th)
        for (name, t) in official.learner.namedParameters { XCTAssertEqual(t.scalars, before[name]!.scalars, "\(name) returns exactly") }
        for (name, t) in official.learner.namedBuffers { XCTAssertEqual(t.scalars, oneUpdate[name]!.scalars, "\(name) keeps one extra update") }
        XCTAssertNotEqual(official.learner.namedBuffers.first { $0.0.hasSuffix("running_mean") }!.1.scalars,
                          before.first { $0.key.hasSuffix("running_mean") }!.value.scalars)
        // Raw similarities: the weights differ from the normalised ones.
        let raw = official.terms(images: f.x, labels: f.y, teacherOutputs: f.teachers.map { $0.outputs(f.x) }, part: .full(epoch: 0))
        let normalised = objective.terms(images: f.x, labels: f.y, teacherOutputs: f.teachers.map { $0.outputs(f.x) }, part: .full(epoch: 0))
        XCTAssertNotEqual(raw.featureWeights!.scalars, normalised.featureWeights!.scalars)
    }
}
