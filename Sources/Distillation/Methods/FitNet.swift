import Engine

/// FitNets (Romero et al. 2015) from one teacher: MSE between the regressed student hint (feature
/// index 2) and the teacher's, β = 100, trained with cross-entropy (α = 0).
public struct FitNet: DistillationMethod {
    public init() {}
    public var name: String { "fitnet" }
    public var summary: String { "FitNet hint matching at feature index 2 from one teacher (β 100)" }
    public var defaultAlpha: Float { 0 }
    public var defaultBeta: Float { 100 }
    public var teachers: TeacherCountRule { .exactlyOne }
    public func regressedMap(_ hyper: DistillationHyperparameters) -> RegressedMap? { .hint }
    public func terms(_ batch: MethodBatch) -> MethodTerms { FitNet.hintTerms(batch) }

    /// The mean KD divergence and the hint MSE averaged over the teachers, uniform weights.
    static func hintTerms(_ batch: MethodBatch) -> MethodTerms {
        let (b, k) = (batch.b, Float(batch.k))
        var terms = MethodTerms(logitTerm: batch.klPerSample.sum() / (b * k), logitWeights: batch.uniform)
        if batch.beta > 0 {
            let mse = batch.featureErrors(student: batch.studentFeatures[2], teacherMaps: batch.teacherOutputs.map { t in
                guard let hint = t.hint else { preconditionFailure("FitNet needs the teacher's hint map (teacherMaps)") }
                return hint
            })
            var feat = mse.sum() / (b * k)
            if batch.hyper.compatOfficial { feat = feat.detached() }  // the official hint loss carries no gradient
            terms.featureTerm = feat
            terms.featureWeights = batch.uniform
        }
        return terms
    }
}
