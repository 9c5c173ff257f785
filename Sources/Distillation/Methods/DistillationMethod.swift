import Engine
import Models

import NN

/// A distillation method of `mmkd distill` (DESIGN.md §3–4): a value that says what the method is
/// (name, help, defaults, how many teachers), what it adds to the learner (modules the student's
/// optimiser trains with it), and what it adds to the loss for one batch. Each method is one file
/// under `Methods/`; `DistillationMethods` is the one list of them that the CLI, experiment files,
/// help texts and reports read. Methods hold no per-run state: what they train lives in the
/// `DistillationLearner` (saved with it) or, for parts trained by the method's own optimiser (MMKD's
/// meta-weight networks), in the module returned by `makeMetaParts` and in the method's iteration.
public protocol DistillationMethod: Sendable {
    /// The name users type (`--method`, experiment files) and the one saved in configurations.
    var name: String { get }
    /// One line for `--help` and reports.
    var summary: String { get }
    /// The weight α of the logit term unless told otherwise.
    var defaultAlpha: Float { get }
    /// The weight β of the feature term unless told otherwise (0: the method matches no features).
    var defaultBeta: Float { get }
    /// The regressor form the method's reference implementation uses.
    var defaultRegressor: FeatureRegressor.Form { get }
    /// How many teachers the method distils.
    var teachers: TeacherCountRule { get }

    /// Which student map the per-teacher regressors project in configuration `hyper`, or nil for
    /// no regressors.
    func regressedMap(_ hyper: DistillationHyperparameters) -> RegressedMap?
    /// The teacher maps beyond logits and the penultimate map that the method reads in
    /// configuration `hyper`; the teachers keep no others during a run.
    func teacherMaps(_ hyper: DistillationHyperparameters) -> TeacherOutputs.Maps
    /// The regressor form built for `hyper` (the official MMKD code ignores `--regressor`).
    func regressorForm(_ hyper: DistillationHyperparameters) -> FeatureRegressor.Form
    /// Modules the student's optimiser trains beyond the student and the regressors, with their
    /// state-dict names in the learner (VID's per-stage layers, SemCKD's attention, CRD's
    /// embeddings and memories).
    func makeParts(_ setup: MethodSetup) -> [(String, Module)]
    /// A module trained outside the learner by the method's own optimiser, read by `terms`
    /// (MMKD's meta-weight networks); nil for most methods.
    func makeMetaParts(_ setup: MethodSetup) -> Module?
    /// The method's logit and feature terms for one batch.
    func terms(_ batch: MethodBatch) -> MethodTerms
    /// What one training iteration does (the regular step; MMKD adds its buffer and meta step).
    func makeIteration(_ regular: DistillationStep) -> DistillationStep

    /// `--compat official`: the official baselines drop the feature term in their first epoch.
    var officialDropsFirstEpochFeatureTerm: Bool { get }
    /// The weights (γ, α) of cross-entropy and the logit term in the regular step's loss.
    func regularLossWeights(_ hyper: DistillationHyperparameters) -> (gamma: Float, alpha: Float)
    /// The method's part of the summary sentence on hyper-parameters (after τ, γ, α, β, regressor).
    func describe(_ hyper: DistillationHyperparameters) -> String
    /// Warnings worth printing before a run with `hyper` and batch size `batchSize` starts.
    func notes(_ hyper: DistillationHyperparameters, batchSize: Int) -> [String]
}

/// How many teachers a method distils.
public enum TeacherCountRule: Sendable, Equatable {
    case exactlyOne
    case atLeast(Int)
}

/// Which student map per-teacher regressors project.
public enum RegressedMap: Sendable, Equatable {
    /// FitNet's hint (feature index 2).
    case hint
    /// The penultimate spatial map (feature index −2).
    case penultimate
}

extension DistillationMethod {
    public var defaultAlpha: Float { 1 }
    public var defaultBeta: Float { 0 }
    public var defaultRegressor: FeatureRegressor.Form { .oneByOne }
    public var teachers: TeacherCountRule { .atLeast(1) }
    /// Whether the method matches intermediate features by default.
    public var usesFeatures: Bool { defaultBeta > 0 }
    public var isSingleTeacher: Bool { teachers == .exactlyOne }

    public func regressedMap(_ hyper: DistillationHyperparameters) -> RegressedMap? { usesFeatures ? .penultimate : nil }
    public func regressorForm(_ hyper: DistillationHyperparameters) -> FeatureRegressor.Form { hyper.regressor }
    /// The hint when the regressors project it (FitNet); no stage maps.
    public func teacherMaps(_ hyper: DistillationHyperparameters) -> TeacherOutputs.Maps { regressedMap(hyper) == .hint ? .hint : [] }
    public func makeParts(_ setup: MethodSetup) -> [(String, Module)] { [] }
    public func makeMetaParts(_ setup: MethodSetup) -> Module? { nil }
    public func makeIteration(_ regular: DistillationStep) -> DistillationStep { regular }
    public var officialDropsFirstEpochFeatureTerm: Bool { true }
    public func regularLossWeights(_ hyper: DistillationHyperparameters) -> (gamma: Float, alpha: Float) { (hyper.gamma, hyper.alpha) }
    public func describe(_ hyper: DistillationHyperparameters) -> String { "" }
    public func notes(_ hyper: DistillationHyperparameters, batchSize: Int) -> [String] { [] }

    /// Why `count` teachers do not suit the method, or nil when they do.
    public func teacherCountProblem(_ count: Int) -> String? {
        switch teachers {
        case .exactlyOne where count != 1: return "\(name) distils exactly one teacher, got \(count)"
        case let .atLeast(n) where count < n: return "\(name) needs at least \(n) teachers, got \(count)"
        default: return nil
        }
    }
}

/// What a method's parts are built from: the student's and each teacher's feature maps on a probe
/// batch, the training set's labels and the run's seed and batch size.
public struct MethodSetup {
    public var studentFeatures: [Tensor]
    public var teacherOutputs: [TeacherOutputs]
    public var trainingLabels: [Int]
    public var classes: Int
    public var batchSize: Int
    public var seed: UInt64
    public var hyper: DistillationHyperparameters

    public init(studentFeatures: [Tensor], teacherOutputs: [TeacherOutputs], trainingLabels: [Int], classes: Int, batchSize: Int,
                seed: UInt64, hyper: DistillationHyperparameters) {
        self.studentFeatures = studentFeatures; self.teacherOutputs = teacherOutputs; self.trainingLabels = trainingLabels
        self.classes = classes; self.batchSize = batchSize; self.seed = seed; self.hyper = hyper
    }
}

/// One batch as a method sees it: the student's forward pass, the teachers' outputs, and the
/// per-sample, per-teacher KD divergences `[B, K]` that every method builds its logit term from.
public struct MethodBatch {
    public let hyper: DistillationHyperparameters
    /// β in force for this batch (0 in the first epoch of an official-compat baseline).
    public let beta: Float
    public let learner: DistillationLearner
    public let teachers: [FrozenTeacher]
    public let teacherOutputs: [TeacherOutputs]
    public let metaParts: Module?
    public let labels: [Int]
    /// Training-set positions of the batch (CRD's memory banks), when known.
    public let indices: [Int]?
    public let studentFeatures: [Tensor]
    public let studentLogits: Tensor
    /// τ²·KL(p_t ‖ p_s) per sample and teacher, `[B, K]`.
    public let klPerSample: Tensor

    /// Batch size as a float (the means' denominator).
    public var b: Float { Float(labels.count) }
    /// Teacher count.
    public var k: Int { teacherOutputs.count }
    /// The student's penultimate spatial map (feature index −2).
    public var penultimate: Tensor { studentFeatures[studentFeatures.count - 2] }
    /// Uniform teacher weights `[B, K]`.
    public var uniform: Tensor { Tensor.full([labels.count, k], 1 / Float(k)) }

    /// Per-sample MSE `[B, K]` of the regressed student map against each teacher's map (maps first
    /// brought to one spatial size); `projected` sees each regressed map.
    public func featureErrors(student map: Tensor, teacherMaps: [Tensor], projected: ((Int, Tensor) -> Void)? = nil) -> Tensor {
        Tensor.concat(teacherMaps.enumerated().map { i, tm in
            let (s, tt) = Tensor.matchingSpatialSize(student: map, teacher: tm)
            let p = learner.regressors[i](s)
            projected?(i, p)
            return meanSquaredError(p, tt, reduction: .none).unsqueezed(1)
        }, axis: 1)
    }
}

/// A method's contribution to a batch's loss: the logit term L_div, the feature term L_feat
/// (before β), and the per-sample teacher weights `[B, K]` they used (detached; for logs).
public struct MethodTerms {
    public var logitTerm: Tensor
    public var featureTerm: Tensor?
    public var logitWeights: Tensor?
    public var featureWeights: Tensor?

    public init(logitTerm: Tensor, featureTerm: Tensor? = nil, logitWeights: Tensor? = nil, featureWeights: Tensor? = nil) {
        self.logitTerm = logitTerm; self.featureTerm = featureTerm; self.logitWeights = logitWeights; self.featureWeights = featureWeights
    }
}
