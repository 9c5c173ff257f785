import Engine

/// The feature baselines of the paper's Table II (AT, VID, CRD, SemCKD, SRRL): one teacher,
/// cross-entropy plus the method's own term (α = 0 by default, as their CIFAR-100 recipes), with the
/// KD divergence available through α.
public protocol SingleTeacherFeatureMethod: DistillationMethod {
    /// The method's own term against the one teacher.
    func ownTerm(_ batch: MethodBatch) -> Tensor
}

extension SingleTeacherFeatureMethod {
    public var defaultAlpha: Float { 0 }
    public var teachers: TeacherCountRule { .exactlyOne }
    /// Their own terms match maps without per-teacher regressors (SRRL's connector is its own).
    public func regressedMap(_ hyper: DistillationHyperparameters) -> RegressedMap? { nil }

    public func terms(_ batch: MethodBatch) -> MethodTerms {
        var terms = MethodTerms(logitTerm: batch.klPerSample.sum() / batch.b, logitWeights: batch.uniform)
        if batch.beta > 0 {
            terms.featureTerm = ownTerm(batch)
            terms.featureWeights = batch.uniform
        }
        return terms
    }
}
