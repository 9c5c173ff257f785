import Distillation
import Engine
import Foundation
import Models
import NN

/// The reference MMKD workload per iteration (`mmkd bench distill`): batch 64, 100 classes, 32×32
/// synthetic inputs, three teachers, the paper's recipe (β = 100, hard buffer 256, meta every 5).
/// The ordinary step runs the teachers, the student's MMKD loss, backward, the SGD step and the
/// buffer update; the meta step is `MMKDMetaStep.run` on a buffer draw (teachers' outputs cached).
enum DistillBenchCases {
    static let configs: [String: (teacher: String, student: String)] = [
        "paper": ("resnet32x4", "resnet8x4"), "paper-vgg": ("vgg13", "vgg8"), "small": ("resnet20", "resnet8"),
    ]
    static let batch = 64, classes = 100, teachers = 3, metaFrequency = 5

    /// Everything one configuration's steps need, built once.
    final class Workload {
        let teachers: [FrozenTeacher]
        let objective: MultiTeacherObjective
        var optimizer = OptimizerDriver(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true))
        var metaStep: MMKDMetaStep
        var buffer = HardSampleBuffer(capacity: 256, seed: 1)
        let x: Tensor, labels: [Int], probe: Tensor

        init(config: String, hypergradient: HypergradientMode, keepGraphs: Bool) {
            let (t, s) = configs[config]!
            Initialization.seed(0)
            teachers = (0..<DistillBenchCases.teachers).map { _ in FrozenTeacher(arch: t, model: try! ModelZoo.make(t, classes: classes), source: "random") }
            let student = try! ModelZoo.make(s, classes: classes)
            var rng = RandomGenerator(seed: 3)
            x = Tensor.randomNormal([batch, 3, 32, 32], generator: &rng)
            labels = (0..<batch).map { _ in Int(rng.next() % UInt64(classes)) }
            let probe = x.slice(axis: 0, 0..<2)
            self.probe = probe
            student.eval()
            let sc = withoutGrad { student.features(probe).features.dropLast().last!.shape[1] }
            student.train()
            let tc = teachers[0].outputs(probe).penultimate.shape[1]
            let learner = DistillationLearner(student: student, regressors: (0..<DistillBenchCases.teachers).map { _ in
                FeatureRegressor(studentChannels: sc, teacherChannels: tc, form: .oneByOne) })
            var hyper = DistillationHyperparameters(method: .mmkd)
            hyper.hypergradient = hypergradient
            hyper.keepReplayGraphs = keepGraphs
            objective = MultiTeacherObjective(hyper: hyper, learner: learner, teachers: teachers,
                                              metaNetworks: MMKDMetaNetworks(teachers: DistillBenchCases.teachers, classes: classes, batchSize: batch))
            metaStep = MMKDMetaStep(hyper: hyper)
            // Fill the buffer with 256 samples and their cached teacher outputs.
            for _ in 0..<(256 / batch) {
                let images = Tensor.randomNormal([batch, 3, 32, 32], generator: &rng)
                let outputs = teachers.map { $0.outputs(images) }
                buffer.offer(images: images, labels: (0..<batch).map { _ in Int(rng.next() % UInt64(classes)) },
                             studentLogits: Tensor.zeros([batch, classes]), teacherOutputs: outputs.flatMap { [$0.logits, $0.penultimate] })
            }
            ordinary()
        }

        func ordinary() {
            let outputs = teachers.map { $0.outputs(x) }
            let terms = objective.terms(images: x, labels: labels, teacherOutputs: outputs, part: .full(epoch: 0))
            optimizer.minimize(terms.total, of: objective.learner)
            buffer.offer(images: x, labels: labels, studentLogits: terms.studentLogits, teacherOutputs: outputs.flatMap { [$0.logits, $0.penultimate] })
        }

        func meta() {
            let s = buffer.sample(batch)
            let hard = (0..<DistillBenchCases.teachers).map { k in
                TeacherOutputs(logits: s.teacherOutputs[2 * k], penultimate: s.teacherOutputs[2 * k + 1], hint: s.teacherOutputs[2 * k + 1])
            }
            metaStep.run(objective: objective, optimizer: optimizer, images: s.images, labels: s.labels, teacherOutputs: hard)
            // The meta step frees the teachers' folded weights; the next regular step rebuilds them.
            // A two-image teacher pass charges that rebuild to the meta step.
            for teacher in teachers { _ = teacher.outputs(probe) }
        }
    }

    /// The ordinary-step and meta-step cases of `config`, sharing one workload.
    static func cases(config: String, hypergradient: HypergradientMode, keepGraphs: Bool) -> [BenchCase] {
        var workload: Workload? = nil
        func shared() -> Workload {
            if let workload { return workload }
            let w = Workload(config: config, hypergradient: hypergradient, keepGraphs: keepGraphs)
            workload = w
            return w
        }
        let spec: [String: Any] = ["config": config, "warmup": 1]
        let suffix = hypergradient == .exact ? (keepGraphs ? " (graphs kept)" : "") : " (\(hypergradient.rawValue))"
        return [
            BenchCase(name: "distill \(config) ordinary step", spec: spec.merging(["kind": "distill_ordinary", "name": "distill \(config) ordinary step"]) { $1 },
                      flops: nil) { let w = shared(); return { w.ordinary() } },
            BenchCase(name: "distill \(config) meta step\(suffix)", spec: spec.merging(["kind": "distill_meta", "name": "distill \(config) meta step\(suffix)"]) { $1 },
                      flops: nil) { let w = shared(); return { w.meta() } },
        ]
    }
}
