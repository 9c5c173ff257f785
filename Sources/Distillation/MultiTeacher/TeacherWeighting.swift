import Engine

/// The per-sample teacher weights of the multi-teacher baselines (DESIGN.md §4), each `[B, K]` from
/// per-teacher tensors. They are written with differentiable ops; callers detach where the reference
/// does.
public enum TeacherWeighting {
    /// EBKD: H_ik = entropy of softmax(z_tk,i) (τ = 1); w_ik = 1 − H_ik / Σ_j H_ij (rows sum to K − 1).
    public static func entropy(teacherLogits: [Tensor]) -> Tensor {
        let h = Tensor.concat(teacherLogits.map { z in
            let logP = z.logSoftmax(axis: 1)
            return -(logP.exp() * logP).sum(axes: [1], keepDims: true)
        }, axis: 1)
        return 1 - h / h.sum(axes: [1], keepDims: true)
    }

    /// CA-MKD: w_ik = (1 − softmax_k(CE(z_tk,i, y_i))) / (K − 1) (rows sum to 1).
    public static func confidence(logits: [Tensor], labels: [Int]) -> Tensor {
        precondition(logits.count >= 2, "CA-MKD weights need at least two teachers, got \(logits.count)")
        let ce = Tensor.concat(logits.map { crossEntropy($0, labels: labels, reduction: .none).unsqueezed(1) }, axis: 1)
        return (1 - ce.softmax(axis: 1)) / Float(logits.count - 1)
    }

    /// AEKD: one weight per teacher from per-teacher gradient vectors (any shape, flattened), by the
    /// linear one-class SVM dual with C = `c`.
    public static func agreement(gradients: [Tensor], c: Double) -> [Float] {
        let vectors = gradients.map { $0.scalars.map(Double.init) }
        return OneClassSVM.teacherWeights(vectors: vectors, c: c).map(Float.init)
    }
}
