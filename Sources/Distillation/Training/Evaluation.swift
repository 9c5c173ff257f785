import Datasets
import Engine
import Models

/// Top-1 / top-5 accuracy (percent) and mean cross-entropy of a classifier over a data set.
public struct EvaluationResult: Codable, Sendable, Equatable {
    public var top1: Double
    public var top5: Double
    public var loss: Double
    public var count: Int
}

public enum Evaluation {
    /// Evaluates in eval mode without gradients; restores the model's previous mode. With
    /// `replicas`, each process evaluates every `size`-th batch (from its rank on) and the counts are
    /// summed, so every process returns the whole loader's result.
    public static func evaluate(_ model: any FeatureClassifier, loader: BatchLoader, replicas: (any ReplicaGroup)? = nil) throws -> EvaluationResult {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        var sums = [0.0, 0.0, 0.0, 0.0]  // top-1, top-5, count, loss
        let it = loader.batches(epoch: 0, startingAt: replicas?.rank ?? 0, stride: replicas?.size ?? 1)
        while let batch = try it.next() {
            let logits = withoutGrad { model(batch.images) }
            sums[3] += Double(withoutGrad { crossEntropy(logits, labels: batch.labels, reduction: .sum) }.item)
            let (c1, c5) = correct(logits, batch.labels)
            sums[0] += Double(c1); sums[1] += Double(c5); sums[2] += Double(batch.labels.count)
        }
        if let replicas { sums = replicas.sum(sums) }
        let n = max(sums[2], 1)
        return EvaluationResult(top1: 100 * sums[0] / n, top5: 100 * sums[1] / n, loss: sums[3] / n, count: Int(sums[2]))
    }

    /// Correct predictions at top-1 and top-5 in a batch of logits, by the rank of the target's logit
    /// in its row sorted in descending order, as PyTorch's `topk` orders it: a NaN ranks above every
    /// number, and equal values keep class order (the lower class index first, as a stable sort).
    /// A sample is correct at k when its target ranks among the first k; a NaN target logit is
    /// always wrong. So a row of equal logits counts only for class 0, and a row of NaN for none.
    public static func correct(_ logits: Tensor, _ labels: [Int]) -> (top1: Int, top5: Int) {
        let c = logits.shape[1]
        let values = logits.scalars
        var top1 = 0, top5 = 0
        for (i, y) in labels.enumerated() {
            let rank = targetRank(values[(i * c)..<((i + 1) * c)], target: y)
            if rank < 1 { top1 += 1 }
            if rank < 5 { top5 += 1 }
        }
        return (top1, top5)
    }

    /// The position of class `target` in `row` sorted as `correct(_:_:)` says (0: first), or
    /// `row.count` when its logit is NaN.
    static func targetRank(_ row: ArraySlice<Float>, target: Int) -> Int {
        let value = row[row.startIndex + target]
        if value.isNaN { return row.count }
        var rank = 0
        for (j, v) in row.enumerated() where j != target && (v.isNaN || v > value || (v == value && j < target)) { rank += 1 }
        return rank
    }
}
