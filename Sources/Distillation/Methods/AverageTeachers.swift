import Engine

/// AVER: the mean KD divergence over the teachers (uniform weights). With β > 0 it also matches the
/// penultimate maps through per-teacher regressors with uniform weights (the AVER curve of the
/// paper's Figure 4, which sweeps β for AVER too).
public struct AverageTeachers: DistillationMethod {
    public init() {}
    public var name: String { "aver" }
    public var summary: String { "mean KD over the teachers; with β > 0 also uniform-weight feature matching" }

    public func regressedMap(_ hyper: DistillationHyperparameters) -> RegressedMap? { hyper.beta > 0 ? .penultimate : nil }

    public func terms(_ batch: MethodBatch) -> MethodTerms {
        var terms = MethodTerms(logitTerm: batch.klPerSample.sum() / (batch.b * Float(batch.k)), logitWeights: batch.uniform)
        if batch.beta > 0 {
            terms.featureTerm = batch.featureErrors(student: batch.penultimate, teacherMaps: batch.teacherOutputs.map(\.penultimate)).sum()
                / (batch.b * Float(batch.k))
            terms.featureWeights = batch.uniform
        }
        return terms
    }
}
