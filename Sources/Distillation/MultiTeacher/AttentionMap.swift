import Engine

extension Tensor {
    /// Attention transfer's spatial attention of a `[B, C, H, W]` map: the channel mean of squared
    /// activations, flattened to `[B, H·W]` and L2-normalised per sample (`F.normalize`).
    public func attentionMap() -> Tensor {
        precondition(rank == 4, "attentionMap: expected [B, C, H, W], got \(shape)")
        let a = square().mean(axes: [1]).reshaped([shape[0], shape[2] * shape[3]])
        return a / (a.square().sum(axes: [1], keepDims: true) + 1e-24).sqrt()
    }
}

extension Tensor {
    /// The (student, teacher) stage maps AT and VID match: the student's features 1 … −2 (all but
    /// the stem and the pooled vector) against the teacher's stage maps, paired from the deepest
    /// down, as many as both networks have.
    public static func stagePairs(student features: [Tensor], teacher stages: [Tensor]) -> [(student: Tensor, teacher: Tensor)] {
        precondition(features.count >= 3 && !stages.isEmpty, "stage matching needs the student's features and the teacher's stage maps")
        let studentStages = Array(features[1..<(features.count - 1)])
        let n = min(studentStages.count, stages.count)
        return (0..<n).map { (studentStages[studentStages.count - n + $0], stages[stages.count - n + $0]) }
    }
}
