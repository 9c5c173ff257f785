import Engine

/// Knowledge distillation (Hinton et al. 2015) from one teacher: cross-entropy plus the
/// temperature-scaled KL divergence to the teacher's softened logits.
public struct KnowledgeDistillation: DistillationMethod {
    public init() {}
    public var name: String { "kd" }
    public var summary: String { "Hinton KD from one teacher (CE + τ²·KL)" }
    public var teachers: TeacherCountRule { .exactlyOne }

    public func terms(_ batch: MethodBatch) -> MethodTerms {
        MethodTerms(logitTerm: batch.klPerSample.sum() / (batch.b * Float(batch.k)), logitWeights: batch.uniform)
    }
}
