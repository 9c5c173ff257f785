import Engine

/// CA-MKD (Zhang et al. 2022): logit weights from each teacher's cross-entropy on the label
/// (`TeacherWeighting.confidence`); feature weights from the cross-entropy of the regressed student
/// map fed through each teacher's own head (not detached, as CA-MKD); bottleneck regressors, β = 50.
public struct ConfidenceAwareTeachers: DistillationMethod {
    public init() {}
    public var name: String { "camkd" }
    public var summary: String { "confidence-aware teacher weights for logits and features (β 50, convs regressor)" }
    public var defaultBeta: Float { 50 }
    public var defaultRegressor: FeatureRegressor.Form { .convs }
    public var teachers: TeacherCountRule { .atLeast(2) }

    public func terms(_ batch: MethodBatch) -> MethodTerms {
        let (b, k) = (batch.b, batch.k)
        let w = TeacherWeighting.confidence(logits: batch.teacherOutputs.map(\.logits), labels: batch.labels)
        var terms = MethodTerms(logitTerm: (w * batch.klPerSample).sum() / (b * Float(k)), logitWeights: w)
        if batch.beta > 0 {
            var headLogits: [Tensor] = Array(repeating: batch.studentLogits, count: k)
            let mse = batch.featureErrors(student: batch.penultimate, teacherMaps: batch.teacherOutputs.map(\.penultimate)) { i, p in
                headLogits[i] = batch.teachers[i].model.classify(penultimate: p)
            }
            let wf = TeacherWeighting.confidence(logits: headLogits, labels: batch.labels)  // not detached, as CA-MKD
            terms.featureTerm = (wf * mse).sum() / (b * Float(k))
            terms.featureWeights = wf.detached()
        }
        return terms
    }
}
