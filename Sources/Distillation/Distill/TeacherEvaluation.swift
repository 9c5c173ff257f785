import Datasets
import Engine

/// The teachers' test accuracy before distillation: each teacher's, and the ensemble's (the mean
/// of the teachers' softmax probabilities).
public struct TeacherEvaluation: Codable, Sendable, Equatable {
    public var checkpoints: [String]
    public var teachers: [EvaluationResult]
    public var ensemble: EvaluationResult

    /// One pass over `loader`, every teacher on every batch.
    public static func measure(_ teachers: [FrozenTeacher], loader: BatchLoader) throws -> TeacherEvaluation {
        var correct = Array(repeating: (top1: 0, top5: 0), count: teachers.count + 1)
        var losses = Array(repeating: 0.0, count: teachers.count + 1)
        var count = 0
        let it = loader.batches(epoch: 0)
        while let batch = try it.next() {
            let logits = teachers.map { $0.outputs(batch.images).logits }
            let ensemble = withoutGrad { (logits.map { $0.softmax(axis: 1) }.reduce(Tensor(scalar: 0), +) / Float(teachers.count)).log() }
            for (i, z) in (logits + [ensemble]).enumerated() {
                let c = Evaluation.correct(z, batch.labels)
                correct[i].top1 += c.top1; correct[i].top5 += c.top5
                losses[i] += Double(withoutGrad { crossEntropy(z, labels: batch.labels, reduction: .sum) }.item)
            }
            count += batch.labels.count
        }
        let n = Double(max(count, 1))
        let results = correct.indices.map { EvaluationResult(top1: 100 * Double(correct[$0].top1) / n, top5: 100 * Double(correct[$0].top5) / n,
                                                             loss: losses[$0] / n, count: count) }
        return TeacherEvaluation(checkpoints: teachers.map(\.source), teachers: Array(results.dropLast()), ensemble: results.last!)
    }
}
