import Engine

/// Attention transfer (Zagoruyko & Komodakis 2017): per stage, the L2-normalised spatial map of
/// channel-mean squared activations; squared differences summed over stages; β = 1000.
public struct AttentionTransfer: SingleTeacherFeatureMethod {
    public init() {}
    public var name: String { "at" }
    public var summary: String { "attention transfer over matching stages from one teacher (β 1000)" }
    public func teacherMaps(_ hyper: DistillationHyperparameters) -> TeacherOutputs.Maps { .stages }
    public var defaultBeta: Float { 1000 }

    public func ownTerm(_ batch: MethodBatch) -> Tensor {
        Tensor.stagePairs(student: batch.studentFeatures, teacher: batch.teacherOutputs[0].stages).map { p -> Tensor in
            let (s, t) = Tensor.matchingSpatialSize(student: p.student, teacher: p.teacher)
            return (s.attentionMap() - t.attentionMap()).square().mean()
        }.reduce(Tensor(scalar: 0), +)
    }
}
