import Datasets
import Engine

/// The teachers' test accuracy before distillation: each teacher's, and the ensemble's (the mean
/// of the teachers' softmax probabilities).
public struct TeacherEvaluation: Codable, Sendable, Equatable {
    public var checkpoints: [String]
    public var teachers: [EvaluationResult]
    public var ensemble: EvaluationResult

    /// One pass over `loader`, every teacher on every batch; with `replicas`, each process takes
    /// every `size`-th batch and the counts are summed.
    public static func measure(_ teachers: [FrozenTeacher], loader: BatchLoader, replicas: (any ReplicaGroup)? = nil) throws -> TeacherEvaluation {
        var correct = Array(repeating: (top1: 0, top5: 0), count: teachers.count + 1)
        var losses = Array(repeating: 0.0, count: teachers.count + 1)
        var count = 0
        let it = loader.batches(epoch: 0, startingAt: replicas?.rank ?? 0, stride: replicas?.size ?? 1)
        while let batch = try it.next() {
            let logits = teachers.map { $0.outputs(batch.images, keeping: []).logits }
            let ensemble = withoutGrad { (logits.map { $0.softmax(axis: 1) }.reduce(Tensor(scalar: 0), +) / Float(teachers.count)).log() }
            for (i, z) in (logits + [ensemble]).enumerated() {
                let c = Evaluation.correct(z, batch.labels)
                correct[i].top1 += c.top1; correct[i].top5 += c.top5
                losses[i] += Double(withoutGrad { crossEntropy(z, labels: batch.labels, reduction: .sum) }.item)
            }
            count += batch.labels.count
        }
        if let replicas {
            let summed = replicas.sum(correct.flatMap { [Double($0.top1), Double($0.top5)] } + losses + [Double(count)])
            correct = correct.indices.map { (Int(summed[2 * $0]), Int(summed[2 * $0 + 1])) }
            losses = Array(summed[(2 * correct.count)..<(3 * correct.count)])
            count = Int(summed.last!)
        }
        let n = Double(max(count, 1))
        let results = correct.indices.map { EvaluationResult(top1: 100 * Double(correct[$0].top1) / n, top5: 100 * Double(correct[$0].top5) / n,
                                                             loss: losses[$0] / n, count: count) }
        return TeacherEvaluation(checkpoints: teachers.map(\.source), teachers: Array(results.dropLast()), ensemble: results.last!)
    }
}
