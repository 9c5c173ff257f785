import Engine

/// Softmax regression representation learning (Yang et al. 2021): the pooled student feature,
/// projected to the teacher's width by the connector (regressor 0), matches the teacher's pooled
/// feature (FM) and, through the teacher's frozen classifier, its logits (SR); β = 1.
public struct SoftmaxRegressionRepresentation: SingleTeacherFeatureMethod {
    public init() {}
    public var name: String { "srrl" }
    public var summary: String { "softmax regression representation learning through the teacher's head from one teacher (β 1)" }
    public var defaultBeta: Float { 1 }
    /// The connector is regressor 0, projecting the penultimate map.
    public func regressedMap(_ hyper: DistillationHyperparameters) -> RegressedMap? { .penultimate }

    public func ownTerm(_ batch: MethodBatch) -> Tensor {
        // The pooled student feature as a 1×1 map through the connector, against the teacher's
        // pooled feature (FM) and, through the teacher's classifier, its logits (SR).
        let t = batch.teacherOutputs[0]
        let projected = batch.learner.regressors[0](batch.penultimate.adaptiveAvgPool2d((1, 1)))
        let fm = meanSquaredError(projected, t.penultimate.adaptiveAvgPool2d((1, 1)))
        return fm + meanSquaredError(batch.teachers[0].model.classify(penultimate: projected), t.logits)
    }
}
