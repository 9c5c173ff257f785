import Datasets
import Distillation
import Engine
import Foundation
import Models
import NN

/// The reference MMKD workload per iteration (`mmkd bench distill`): batch 64, 100 classes, 32×32
/// synthetic inputs, three teachers, the paper's recipe (β = 100, hard buffer 256, meta every 5).
/// Both cases run the trainer's own `MMKDIteration`: the ordinary step is an iteration that is not
/// due for a meta step (teachers, the student's MMKD loss, backward, the SGD step, the buffer
/// update); the meta step is `MMKDIteration.metaStep` on a buffer draw (teachers' outputs cached).
enum DistillBenchCases {
    static let configs: [String: (teacher: String, student: String)] = [
        "paper": ("resnet32x4", "resnet8x4"), "paper-vgg": ("vgg13", "vgg8"), "small": ("resnet20", "resnet8"),
    ]

    /// The pairs of the paper's Table I, as `TEACHER:STUDENT` configurations.
    static let tableOnePairs = ["vgg13:vgg8", "resnet32x4:MobileNetV2", "resnet32x4:vgg8", "wrn_40_2:MobileNetV2", "wrn_40_2:wrn_40_1",
                                "resnet20x4:ShuffleV1"]

    /// The teacher and student of `config`: a named configuration, or `TEACHER:STUDENT` for any two
    /// CIFAR architectures of the zoo; nil when it is neither.
    static func pair(_ config: String) -> (teacher: String, student: String)? {
        if let named = configs[config] { return named }
        let parts = config.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, parts.allSatisfy({ ModelZoo.allNames.contains($0) && !ModelZoo.imageNetNames.contains($0) }) else { return nil }
        return (parts[0], parts[1])
    }
    static let batch = 64, classes = 100, teachers = 3

    /// Everything one configuration's steps need, built once. Under `mpirun`, the steps are
    /// data-parallel over the job's processes (each its slice of the batch of 64), as in training.
    final class Workload {
        let iteration: MMKDIteration
        var optimizer = OptimizerDriver(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true))
        let x: Batch, probe: Tensor
        let replicas = ParallelJob.replicas
        /// Per kind of step ("ordinary", "meta"): steps run, bytes this process sent, seconds in MPI.
        var traffic: [String: (steps: Int, bytes: Int, seconds: Double)] = [:]

        /// `body` within the job's replica group, its communication counted under `kind`.
        func counted(_ kind: String, _ body: () -> Void) {
            let before = replicas?.traffic ?? (bytes: 0, seconds: 0)
            Replicas.with(replicas, body)
            let after = replicas?.traffic ?? (bytes: 0, seconds: 0)
            let t = traffic[kind] ?? (0, 0, 0)
            traffic[kind] = (t.steps + 1, t.bytes + after.bytes - before.bytes, t.seconds + after.seconds - before.seconds)
        }

        /// This process's slice of a whole batch.
        static func share(_ b: Batch, _ replicas: (any ReplicaGroup)?) -> Batch {
            guard let replicas else { return b }
            let rows = replicas.share(of: b.labels.count)
            return Batch(images: b.images.slice(axis: 0, rows), labels: Array(b.labels[rows]), indices: Array(b.indices[rows]))
        }

        init(config: String, hypergradient: HypergradientMode, keepGraphs: Bool) {
            let (t, s) = pair(config)!
            Initialization.seed(0)
            let teachers = (0..<DistillBenchCases.teachers).map { _ in FrozenTeacher(arch: t, model: try! ModelZoo.make(t, classes: classes), source: "random") }
            let student = try! ModelZoo.make(s, classes: classes)
            var rng = RandomGenerator(seed: 3)
            let images = Tensor.randomNormal([batch, 3, 32, 32], generator: &rng)
            let whole = Batch(images: images, labels: (0..<batch).map { _ in Int(rng.next() % UInt64(classes)) }, indices: Array(0..<batch))
            x = Workload.share(whole, ParallelJob.replicas)
            let probe = images.slice(axis: 0, 0..<2)
            self.probe = probe
            var config = DistillationConfiguration(student: s, data: "synthetic", teachers: [], method: MetaLearnedTeacherWeights())
            config.training.batchSize = batch
            config.hyper.hypergradient = hypergradient
            config.hyper.keepReplayGraphs = keepGraphs
            student.eval()
            let features = withoutGrad { student.features(probe).features }
            student.train()
            let setup = MethodSetup(studentFeatures: features, teacherOutputs: teachers.map { $0.outputs(probe) }, trainingLabels: [],
                                    classes: classes, batchSize: batch, seed: 0, hyper: config.hyper)
            iteration = DistillationStep.make(config: config, student: student, teachers: teachers, setup: setup) as! MMKDIteration
            // Fill the buffer with 256 samples and their cached teacher outputs.
            iteration.buffer = HardSampleBuffer(capacity: 256, seed: 1)
            for _ in 0..<(256 / batch) {
                let images = Tensor.randomNormal([batch, 3, 32, 32], generator: &rng)
                let fill = Workload.share(Batch(images: images, labels: (0..<batch).map { _ in Int(rng.next() % UInt64(classes)) }, indices: Array(0..<batch)), replicas)
                Replicas.with(replicas) {
                    iteration.offer(fill, studentLogits: Tensor.zeros([fill.labels.count, classes]), teacherOutputs: teachers.map { $0.outputs(fill.images, keeping: []) })
                }
            }
            ordinary()
            traffic = [:]
        }

        /// An iteration not due for a meta step (index 1 of 5).
        func ordinary() {
            counted("ordinary") { _ = try! iteration.run(x, index: 1, batches: 5, epoch: 0, optimizer: &optimizer) }
        }

        func meta() {
            counted("meta") { iteration.metaStep(current: (x.images, x.labels, []), optimizer: optimizer) }
            // The meta step frees the teachers' folded weights; the next regular step rebuilds them.
            // A two-image teacher pass charges that rebuild to the meta step.
            for teacher in iteration.teachers { _ = teacher.outputs(probe, keeping: []) }
        }
    }

    /// The ordinary-step and meta-step cases of `config`, sharing one workload.
    /// The workload of the last `cases` call, once built (for its communication counts).
    nonisolated(unsafe) static var lastWorkload: Workload?

    static func cases(config: String, hypergradient: HypergradientMode, keepGraphs: Bool) -> [BenchCase] {
        var workload: Workload? = nil
        func shared() -> Workload {
            if let workload { return workload }
            let w = Workload(config: config, hypergradient: hypergradient, keepGraphs: keepGraphs)
            workload = w
            lastWorkload = w
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
