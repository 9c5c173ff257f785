import Engine
import NN

/// MMKD (DESIGN.md §3): per-sample teacher weights for the logits and the penultimate features from
/// two meta-weight networks (`MMKDMetaNetworks`), trained by MMKD's meta step on hard samples
/// (`MMKDIteration`). β = 100.
public struct MetaLearnedTeacherWeights: DistillationMethod {
    public init() {}
    public var name: String { "mmkd" }
    public var summary: String { "meta-learned per-sample teacher weights for logits and features (β 100; the paper's method)" }
    public var defaultBeta: Float { 100 }

    /// The official code ignores `--convs`: always the 1×1 regressor there.
    public func regressorForm(_ hyper: DistillationHyperparameters) -> FeatureRegressor.Form {
        hyper.compatOfficial ? .oneByOne : hyper.regressor
    }

    public func makeMetaParts(_ setup: MethodSetup) -> Module? {
        MMKDMetaNetworks(teachers: setup.teacherOutputs.count, classes: setup.classes, batchSize: setup.batchSize)
    }

    public func makeIteration(_ regular: DistillationStep) -> DistillationStep { MMKDIteration(regular) }

    /// The official MMKD code keeps the feature term in every epoch.
    public var officialDropsFirstEpochFeatureTerm: Bool { false }

    /// The official code's regular step is CE + L_div + β·L_feat whatever γ and α say.
    public func regularLossWeights(_ hyper: DistillationHyperparameters) -> (gamma: Float, alpha: Float) {
        hyper.compatOfficial ? (1, 1) : (hyper.gamma, hyper.alpha)
    }

    public func terms(_ batch: MethodBatch) -> MethodTerms {
        let hyper = batch.hyper
        guard let nets = batch.metaParts as? MMKDMetaNetworks else { preconditionFailure("mmkd needs its meta-weight networks (makeMetaParts)") }
        let t = batch.teacherOutputs
        let uniform = batch.uniform
        let wl = hyper.learnLogitWeights ? nets.logit.weights(teacherInputs: t.map(\.logits), studentInput: batch.studentLogits) : uniform
        var terms = MethodTerms(logitTerm: (wl * batch.klPerSample).sum() / batch.b, logitWeights: wl.detached())
        if batch.beta > 0 {
            let penultimate = batch.penultimate
            let mse = batch.featureErrors(student: penultimate, teacherMaps: t.map(\.penultimate))
            let normalised = !hyper.compatOfficial
            let wf = hyper.learnFeatureWeights
                ? nets.feature.weights(teacherInputs: t.map { $0.penultimate.batchSimilarity(normalised: normalised, wholeBatch: Replicas.current.map($0.wholeBatchPenultimate)) },
                                       studentInput: penultimate.detached().batchSimilarity(normalised: normalised))
                : uniform
            terms.featureTerm = (wf * mse).sum() / batch.b
            terms.featureWeights = wf.detached()
        }
        return terms
    }

    public func describe(_ hyper: DistillationHyperparameters) -> String {
        var text = ", meta lr \(hyper.metaLearningRate), meta weight decay \(hyper.metaWeightDecay), meta every \(hyper.metaFrequency) iterations"
        text += ", hard buffer \(hyper.useBuffer ? "\(hyper.bufferSize)" : "off"), hypergradient \(hyper.hypergradient.rawValue)"
        if !hyper.learnLogitWeights { text += ", logit weights uniform" }
        if !hyper.learnFeatureWeights { text += ", feature weights uniform" }
        return text
    }

    public func notes(_ hyper: DistillationHyperparameters, batchSize: Int) -> [String] {
        guard hyper.compatOfficial && hyper.useBuffer && hyper.bufferSize % batchSize != 0 else { return [] }
        return ["--compat official: buffer size \(hyper.bufferSize) is not a multiple of the batch (\(batchSize)), so, as in the official code, the hard buffer never counts as full and keeps every regular batch (memory grows each iteration)"]
    }
}
