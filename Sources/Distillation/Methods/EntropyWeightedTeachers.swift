import Engine

/// EBKD: each teacher's KD divergence weighted per sample by 1 − H_ik / Σ_j H_ij, H the entropy of
/// the teacher's prediction (`TeacherWeighting.entropy`).
public struct EntropyWeightedTeachers: DistillationMethod {
    public init() {}
    public var name: String { "ebkd" }
    public var summary: String { "entropy-weighted teachers (confident teachers count more)" }
    public var teachers: TeacherCountRule { .atLeast(2) }

    public func terms(_ batch: MethodBatch) -> MethodTerms {
        let w = TeacherWeighting.entropy(teacherLogits: batch.teacherOutputs.map(\.logits))
        return MethodTerms(logitTerm: (w * batch.klPerSample).sum() / (batch.b * Float(batch.k)), logitWeights: w)
    }
}
