/// Losses, each with a per-sample form. All are compositions of differentiable ops, so they have
/// gradients of every order.
public enum Reduction: Sendable { case mean, none, sum }

extension Tensor {
    func reduce(_ perSample: Tensor, _ reduction: Reduction) -> Tensor {
        switch reduction {
        case .none: return perSample
        case .mean: return perSample.mean()
        case .sum: return perSample.sum()
        }
    }
}

/// Cross-entropy of logits `[B, C]` against integer labels (PyTorch's `F.cross_entropy`).
public func crossEntropy(_ logits: Tensor, labels: [Int], reduction: Reduction = .mean) -> Tensor {
    precondition(logits.rank == 2, "crossEntropy: logits must be [batch, classes], got \(logits.shape)")
    precondition(labels.count == logits.shape[0], "crossEntropy: \(labels.count) labels for a batch of \(logits.shape[0])")
    let picked = (logits.logSoftmax(axis: 1) * Tensor.oneHot(labels, classes: logits.shape[1])).sum(axes: [1])
    return logits.reduce(-picked, reduction)
}

/// The distillation KL term τ²·Σ_c p_t,c (log p_t,c − log p_s,c) with p = softmax(z/τ), per sample
/// (`.none`), or averaged over the batch (`.mean`, PyTorch's `batchmean` × τ² as in RepDistiller).
public func distillationKL(student: Tensor, teacher: Tensor, temperature: Float, reduction: Reduction = .mean) -> Tensor {
    precondition(student.shape == teacher.shape && student.rank == 2,
                 "distillationKL: student \(student.shape) and teacher \(teacher.shape) logits must both be [batch, classes]")
    let logPs = (student / temperature).logSoftmax(axis: 1)
    let logPt = (teacher / temperature).logSoftmax(axis: 1)
    let perSample = (logPt.exp() * (logPt - logPs)).sum(axes: [1]) * (temperature * temperature)
    return student.reduce(perSample, reduction)
}

/// Mean squared error; per sample it averages over every dimension but the first.
public func meanSquaredError(_ prediction: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    precondition(prediction.shape == target.shape, "meanSquaredError: shapes \(prediction.shape) and \(target.shape) differ")
    let sq = (prediction - target).square()
    switch reduction {
    case .mean: return sq.mean()
    case .sum: return sq.sum()
    case .none: return sq.flattened(from: 1).mean(axes: [1])
    }
}
