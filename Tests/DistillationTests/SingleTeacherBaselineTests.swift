import Distillation
import Engine
import Models
import NN
import XCTest

/// The single-teacher baselines of the paper's Table II (FitNet, AT, VID, SemCKD, SRRL, with KD): their losses
/// against finite differences and against the formulas, and one SGD step on a fixed batch lowering
/// each method's loss.
final class SingleTeacherBaselineTests: XCTestCase {
    /// Central differences of `loss` at a few coordinates of `x` against its reverse-mode gradient.
    func checkGradient(_ name: String, _ x: Tensor, coordinates: Int = 12, h: Float = 1e-2, _ loss: (Tensor) -> Tensor) {
        let leaf = x.requiringGrad()
        let analytic = gradients(of: loss(leaf), wrt: [leaf])[0].scalars
        var g = RandomGenerator(seed: 77)
        let base = x.scalars
        for _ in 0..<coordinates {
            let i = Int(g.next() % UInt64(base.count))
            func at(_ d: Float) -> Double {
                var v = base
                v[i] += d
                return Double(withoutGrad { loss(Tensor(v, shape: x.shape)) }.item)
            }
            let numeric = (at(h) - at(-h)) / Double(2 * h)
            XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 2e-2 * max(abs(numeric), 1e-2), "\(name): ∂/∂x[\(i)]")
        }
    }

    func testAttentionMapIsTheNormalisedChannelMeanOfSquares() {
        var g = RandomGenerator(seed: 1)
        let f = Tensor.randomNormal([2, 3, 4, 4], generator: &g)
        let a = f.attentionMap()
        XCTAssertEqual(a.shape, [2, 16])
        let v = f.scalars
        for b in 0..<2 {
            let raw = (0..<16).map { p in (0..<3).map { c in v[(b * 3 + c) * 16 + p] * v[(b * 3 + c) * 16 + p] }.reduce(0, +) / 3 }
            let norm = raw.map { $0 * $0 }.reduce(0, +).squareRoot()
            for p in 0..<16 { XCTAssertEqual(a.scalars[b * 16 + p], raw[p] / norm, accuracy: 1e-6) }
        }
    }

    func testLossesMatchFiniteDifferences() {
        var g = RandomGenerator(seed: 2)
        // AT: two stages, the first at a larger size than the teacher's (pooled to match).
        let t1 = Tensor.randomNormal([2, 4, 4, 4], generator: &g), t2 = Tensor.randomNormal([2, 8, 2, 2], generator: &g)
        let s1 = Tensor.randomNormal([2, 3, 8, 8], generator: &g)
        checkGradient("attention transfer", s1) { s in
            let (a, b) = Tensor.matchingSpatialSize(student: s, teacher: t1)
            let (c, d) = Tensor.matchingSpatialSize(student: (s * 0.5).adaptiveAvgPool2d((2, 2)), teacher: t2)
            return (a.attentionMap() - b.attentionMap()).square().mean() + (c.attentionMap() - d.attentionMap()).square().mean()
        }
        // FitNet's hint loss through its regressor (1×1 conv → BN → ReLU, training mode).
        Initialization.seed(3)
        let regressor = FeatureRegressor(studentChannels: 3, teacherChannels: 5, form: .oneByOne)
        let hint = Tensor.randomNormal([2, 5, 4, 4], generator: &g)
        checkGradient("fitnet hint", Tensor.randomNormal([2, 3, 4, 4], generator: &g)) { s in meanSquaredError(regressor(s), hint) }
        // VID: the Gaussian's negative log-likelihood, through its regressor and its variance.
        let vid = VariationalInformationLayer(studentChannels: 3, teacherChannels: 4)
        XCTAssertEqual(Set(vid.stateDict.map(\.0)), ["log_scale", "regressor.0.weight", "regressor.2.weight", "regressor.4.weight"])
        checkGradient("vid", Tensor.randomNormal([2, 3, 8, 8], generator: &g)) { s in vid.negativeLogLikelihood(student: s, teacher: t1) }
        let logScale = vid.logScale
        checkGradient("vid log-scale", logScale) { ls in
            vid.update(parameters: ["log_scale": ls])
            defer { vid.update(parameters: ["log_scale": logScale]) }
            return vid.negativeLogLikelihood(student: s1, teacher: t1)
        }
        // SemCKD: attention weights and per-pair projections, through the student's maps.
        Initialization.seed(8)
        let semckd = CrossLayerAttention(studentChannels: [3, 5], teacherChannels: [4, 6], batchSize: 4)
        let tStages = [Tensor.randomNormal([4, 4, 4, 4], generator: &g), Tensor.randomNormal([4, 6, 2, 2], generator: &g)]
        let s2 = Tensor.randomNormal([4, 5, 4, 4], generator: &g)
        let (_, w) = semckd.loss(student: [Tensor.randomNormal([4, 3, 8, 8], generator: &g), s2], teacher: tStages)
        XCTAssertEqual(w.shape, [4, 4])
        for row in 0..<4 { for i in 0..<2 { XCTAssertEqual(w.scalars[(row * 4 + 2 * i)..<(row * 4 + 2 * i + 2)].reduce(0, +), 1, accuracy: 1e-5) } }
        checkGradient("semckd", Tensor.randomNormal([4, 3, 8, 8], generator: &g), h: 3e-3) { s in semckd.loss(student: [s, s2], teacher: tStages).loss }
        // SRRL: connector on the pooled feature, FM + SR through a teacher's classifier (the connector
        // in evaluation mode here, so that no batch statistic couples the samples).
        g = RandomGenerator(seed: 12)
        let teacher = try! ModelZoo.make("resnet8", classes: 10)
        teacher.eval()
        let connector = FeatureRegressor(studentChannels: 6, teacherChannels: 64, form: .oneByOne)
        connector.eval()
        let tPooled = Tensor.randomNormal([16, 64, 1, 1], generator: &g), tLogits = Tensor.randomNormal([16, 10], generator: &g)
        checkGradient("srrl", Tensor.randomNormal([16, 6, 2, 2], generator: &g), h: 3e-3) { s in
            let p = connector(s.adaptiveAvgPool2d((1, 1)))
            return meanSquaredError(p, tPooled) + meanSquaredError(teacher.classify(penultimate: p), tLogits)
        }
    }

    func testOneStepLowersEachBaselinesLossOnAFixedBatch() throws {
        var g = RandomGenerator(seed: 4)
        let x = Tensor.randomNormal([8, 3, 32, 32], generator: &g)
        let labels = (0..<8).map { _ in Int(g.next() % 10) }
        Initialization.seed(5)
        let teacher = FrozenTeacher(arch: "resnet14", model: try ModelZoo.make("resnet14", classes: 10), source: "random")
        let outputs = [teacher.outputs(x)]
        XCTAssertEqual(outputs[0].stages.count, 3, "resnet stages 1–3 are kept for AT")
        for method in DistillationMethods.all.filter(\.isSingleTeacher) {
            Initialization.seed(6)
            let student = try ModelZoo.make("resnet8", classes: 10)
            let hyper = DistillationHyperparameters(method: method)
            let isKD = method.name == "kd"
            XCTAssertEqual(hyper.alpha, isKD ? 1 : 0, method.name)
            var config = DistillationConfiguration(student: "resnet8", data: "synthetic", teachers: [TeacherSpec(arch: "resnet14", checkpoint: "random")], method: method)
            config.training.batchSize = 8; config.training.seed = 1
            let features = withoutGrad { student.features(x).features }
            let setup = MethodSetup(studentFeatures: features, teacherOutputs: outputs, trainingLabels: labels, classes: 10, batchSize: 8, seed: 1, hyper: hyper)
            let objective = DistillationStep.make(config: config, student: student, teachers: [teacher], setup: setup).objective
            var sgd = OptimizerDriver(SGD(learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4, nesterov: true))
            let crd = objective.learner.parts.first?.1 as? ContrastiveRepresentation
            let memories = crd.map { ($0.memoryStudent, $0.memoryTeacher) }
            let before = objective.terms(images: x, labels: labels, teacherOutputs: outputs, part: .full(epoch: 1), indices: Array(0..<8))
            if !isKD { XCTAssertGreaterThan(before.featureTerm?.item ?? 0, 0, "\(method.name) has its own term") }
            sgd.minimize(before.total, of: objective.learner)
            if let crd {  // the same memories and negatives for the comparison
                crd.update(buffers: ["memory_student": memories!.0, "memory_teacher": memories!.1, "step": Tensor.zeros([1])])
            }
            let after = withoutGrad { objective.terms(images: x, labels: labels, teacherOutputs: outputs, part: .full(epoch: 1), indices: Array(0..<8)) }
            XCTAssertLessThan(after.total.item, before.total.item, method.name)
            if !isKD { XCTAssertLessThan(after.featureTerm!.item, before.featureTerm!.item, "\(method.name): its own term falls") }
        }
    }

    func testContrastiveRepresentationScoresNegativesAndMemories() throws {
        let labels = (0..<40).map { $0 % 4 }
        Initialization.seed(22)
        let crd = ContrastiveRepresentation(studentDim: 6, teacherDim: 5, labels: labels, negatives: 16384, seed: 3)
        XCTAssertEqual(crd.negatives, 30, "capped at the samples of other classes")
        let contrast = crd.contrastIndices([0, 5, 38])
        for (i, row) in zip([0, 5, 38], contrast) {
            XCTAssertEqual(row[0], i)
            XCTAssertTrue(row.dropFirst().allSatisfy { labels[$0] != labels[i] && (0..<40).contains($0) }, "negatives are of other classes")
        }
        XCTAssertEqual(contrast.map { $0 }, crd.contrastIndices([0, 5, 38]), "the same step draws the same negatives")
        var g = RandomGenerator(seed: 21)
        let fs = Tensor.randomNormal([3, 6], generator: &g), ft = Tensor.randomNormal([3, 5], generator: &g)
        _ = crd.score(student: fs, teacher: ft, indices: [0, 5, 38])   // fixes the normalisers
        XCTAssertGreaterThan(crd.normalisers.scalars[0], 0)
        checkGradient("crd", fs, h: 3e-3) { crd.score(student: $0, teacher: ft, indices: [0, 5, 38]).loss }
        let memory = crd.memoryStudent
        _ = crd.loss(student: fs, teacher: ft, indices: [0, 5, 38])
        XCTAssertEqual(crd.step.item, 1)
        let after = crd.memoryStudent.scalars
        for i in [0, 5, 38] {
            XCTAssertEqual((0..<128).map { after[i * 128 + $0] * after[i * 128 + $0] }.reduce(0, +), 1, accuracy: 1e-4, "row \(i) normalised")
            XCTAssertNotEqual(Array(after[(i * 128)..<(i * 128 + 128)]), Array(memory.scalars[(i * 128)..<(i * 128 + 128)]))
        }
        XCTAssertEqual(Array(after[128..<256]), Array(memory.scalars[128..<256]), "rows outside the batch stay")
    }
}
