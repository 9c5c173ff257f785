import Engine
import Models
import NN

/// The training loss of a distillation method for one batch, with the teacher weights it used:
/// the student's forward pass, cross-entropy, the per-sample KD divergences, the method's own terms
/// (`DistillationMethod.terms`), and their sum γ·CE + α·L_div + β·L_feat. Teachers' outputs come in
/// precomputed (they are frozen; MMKD's buffer caches them).
public final class MultiTeacherObjective {
    public let hyper: DistillationHyperparameters
    public let learner: DistillationLearner
    public let teachers: [FrozenTeacher]
    /// What the method trains outside the learner (MMKD's meta-weight networks), or nil.
    public let metaParts: Module?

    /// Which loss to build: the regular step's (in `epoch`), MMKD's look-ahead matching loss
    /// α·L_div + β·L_feat, or cross-entropy alone (MMKD's last look-ahead step).
    public enum Part: Equatable { case full(epoch: Int), matching, crossEntropy }

    public struct Terms {
        public var total: Tensor
        public var crossEntropy: Tensor
        public var logitTerm: Tensor?
        public var featureTerm: Tensor?
        /// Per-sample teacher weights `[B, K]` used for the logit and feature terms (detached).
        public var logitWeights: Tensor?
        public var featureWeights: Tensor?
        public var studentLogits: Tensor
    }

    public init(hyper: DistillationHyperparameters, learner: DistillationLearner, teachers: [FrozenTeacher], metaParts: Module? = nil) {
        if let problem = hyper.method.teacherCountProblem(teachers.count) { preconditionFailure(problem) }
        precondition(hyper.regressedMap == nil || learner.regressors.count == teachers.count, "one regressor per teacher")
        self.hyper = hyper; self.learner = learner; self.teachers = teachers; self.metaParts = metaParts
    }

    /// The loss terms of the batch `images` with `labels`, given each teacher's outputs for it;
    /// `indices` (training-set positions) are needed by CRD's memory banks.
    public func terms(images: Tensor, labels: [Int], teacherOutputs t: [TeacherOutputs], part: Part, indices: [Int]? = nil) -> Terms {
        precondition(t.count == teachers.count, "\(t.count) teacher outputs for \(teachers.count) teachers")
        let (features, zs) = learner.student.features(images)
        let ce = crossEntropy(zs, labels: labels)
        if part == .crossEntropy {
            return Terms(total: ce, crossEntropy: ce, studentLogits: zs)
        }
        var epoch = 0
        if case let .full(e) = part { epoch = e }
        let method = hyper.method
        var beta = hyper.beta
        if hyper.compatOfficial && method.officialDropsFirstEpochFeatureTerm && epoch == 0 { beta = 0 }

        let tau = hyper.temperature
        let klPerSample = Tensor.concat(t.map { distillationKL(student: zs, teacher: $0.logits, temperature: tau, reduction: .none).unsqueezed(1) }, axis: 1)
        let own = method.terms(MethodBatch(hyper: hyper, beta: beta, learner: learner, teachers: teachers, teacherOutputs: t, metaParts: metaParts,
                                           labels: labels, indices: indices, studentFeatures: features, studentLogits: zs, klPerSample: klPerSample))
        let div = own.logitTerm
        let featureTerm = own.featureTerm.map { $0 * beta }
        let total: Tensor
        switch part {
        case .matching:
            total = div * hyper.alpha + (featureTerm ?? Tensor(scalar: 0))
        default:
            let (gamma, alpha) = method.regularLossWeights(hyper)
            total = ce * gamma + div * alpha + (featureTerm ?? Tensor(scalar: 0))
        }
        return Terms(total: total, crossEntropy: ce, logitTerm: div, featureTerm: own.featureTerm, logitWeights: own.logitWeights,
                     featureWeights: own.featureWeights, studentLogits: zs)
    }
}
