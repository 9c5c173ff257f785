import Engine
import Foundation
import NN

/// Contrastive representation distillation (Tian et al. 2020), as RepDistiller's `CRDLoss`: the
/// pooled student and teacher features are embedded (linear → L2-normalised, 128 dims); each
/// sample's embedding is scored against the other network's memory-bank entry of the same sample
/// (the positive) and of K samples of other classes (negatives) by exp(m·v/T)/Z (Z fixed at the
/// first batch as the mean score times N); the NCE loss with noise probability 1/N is applied in
/// both directions; then each memory row of the batch moves to the normalised momentum average
/// (0.5) with its new embedding. Negatives are drawn with a generator seeded by (seed, step), so a
/// resumed run draws the same ones; memories, normalisers and step are buffers (saved with the
/// learner). State-dict names: `embed_student.*`, `embed_teacher.*`, `memory_student`, `memory_teacher`,
/// `normalisers`, `step`.
public final class ContrastiveRepresentation: Module {
    public let embedStudent: Linear, embedTeacher: Linear
    @Buffer public var memoryStudent: Tensor
    @Buffer public var memoryTeacher: Tensor
    @Buffer public var normalisers: Tensor
    @Buffer public var step: Tensor
    public let negatives: Int, temperature: Float, momentum: Float, seed: UInt64
    /// Training-set positions of each class (negatives come from the other classes).
    let classMembers: [[Int]]
    let labels: [Int]

    /// `labels`: the class of every training sample, by position; `negatives` is capped at the
    /// number of samples of other classes.
    public init(studentDim: Int, teacherDim: Int, labels: [Int], embedding: Int = 128, negatives: Int = 16384,
                temperature: Float = 0.07, momentum: Float = 0.5, seed: UInt64 = 0) {
        precondition(!labels.isEmpty, "CRD: the training set is empty")
        embedStudent = Linear(studentDim, embedding)
        embedTeacher = Linear(teacherDim, embedding)
        let n = labels.count
        let stdv = 1 / (Float(embedding) / 3).squareRoot()
        var g = RandomGenerator(seed: seed ^ 0xC4D)
        memoryStudent = Tensor.randomUniform([n, embedding], low: -stdv, high: stdv, generator: &g)
        memoryTeacher = Tensor.randomUniform([n, embedding], low: -stdv, high: stdv, generator: &g)
        normalisers = Tensor([-1, -1], shape: [2])
        step = Tensor.zeros([1])
        let classes = (labels.max() ?? 0) + 1
        var members = [[Int]](repeating: [], count: classes)
        for (i, y) in labels.enumerated() { members[y].append(i) }
        classMembers = members
        self.labels = labels
        let fewestOthers = members.filter { !$0.isEmpty }.map { n - $0.count }.min() ?? 0
        self.negatives = max(1, min(negatives, fewestOthers))
        self.temperature = temperature; self.momentum = momentum; self.seed = seed
        super.init()
    }

    /// For each sample of the batch: its own position, then `negatives` positions of other classes.
    public func contrastIndices(_ indices: [Int]) -> [[Int]] {
        var g = RandomGenerator(seed: seed &+ 0x9E37_79B9 &* UInt64(step.item + 1))
        let n = labels.count
        return indices.map { i in
            let own = classMembers[labels[i]]
            let others = n - own.count
            // Uniform over the samples of other classes: the k-th of them in position order.
            return [i] + (0..<negatives).map { _ in
                var k = Int(g.next() % UInt64(others))
                for m in own { if m <= k { k += 1 } else { break } }
                return k
            }
        }
    }

    /// The CRD loss of a batch (`indices`: training-set positions), then the memory update. In a
    /// data-parallel step, `indices` are this process's slice; the memories move with the whole
    /// batch's embeddings (gathered), as in one process.
    public func loss(student: Tensor, teacher: Tensor, indices: [Int]) -> Tensor {
        let (loss, vs, vt) = score(student: student, teacher: teacher, indices: indices)
        withoutGrad {
            let group = Replicas.current
            let rows = group.map { $0.gather(indices) } ?? indices
            let all = { (v: Tensor) in group.map { v.detached().gatheredAcrossReplicas($0) } ?? v.detached() }
            memoryStudent = updated(memoryStudent, rows: rows, with: all(vs))
            memoryTeacher = updated(memoryTeacher, rows: rows, with: all(vt))
            step = step + 1
        }
        return loss
    }

    /// The loss and both embeddings at the current memories (fixing the normalisers on first use).
    public func score(student: Tensor, teacher: Tensor, indices: [Int]) -> (loss: Tensor, student: Tensor, teacher: Tensor) {
        precondition(student.rank == 2 && teacher.rank == 2 && student.shape[0] == indices.count,
                     "CRD: pooled features [B, D] for \(indices.count) samples, got \(student.shape) and \(teacher.shape)")
        func unit(_ x: Tensor) -> Tensor { x / (x.square().sum(axes: [1], keepDims: true) + 1e-24).sqrt() }
        let vs = unit(embedStudent(student)), vt = unit(embedTeacher(teacher.detached()))
        // In a data-parallel step: the whole batch's draws (one process's), this process's rows of them.
        let group = Replicas.current
        let contrast = group.map { g in Array(contrastIndices(g.gather(indices))[g.share(of: indices.count * g.size)]) } ?? contrastIndices(indices)
        let n = Float(labels.count), t = temperature
        // Student embeddings against the teacher memory, and the teacher's against the student memory.
        let scoreS = (Tensor.rowDots(memoryTeacher, contrast, vs) / t).exp()
        let scoreT = (Tensor.rowDots(memoryStudent, contrast, vt) / t).exp()
        if normalisers.scalars[0] < 0 {
            // The whole batch's mean score (the mean of the processes' equal slices' means).
            var means = [Double(scoreS.mean().item), Double(scoreT.mean().item)]
            if let group { means = group.sum(means).map { $0 / Double(group.size) } }
            withoutGrad { normalisers = Tensor([Float(means[0]) * n, Float(means[1]) * n], shape: [2]) }
        }
        let z = normalisers.scalars
        return (nce(scoreS / z[0]) + nce(scoreT / z[1]), vs, vt)
    }

    /// NCE with noise probability 1/N over `[B, 1 + K]` scores (positive first).
    func nce(_ p: Tensor) -> Tensor {
        let b = p.shape[0], k = Float(p.shape[1] - 1)
        let noise = k / Float(labels.count), eps: Float = 1e-7
        let positive = p.slice(axis: 1, 0..<1), negative = p.slice(axis: 1, 1..<p.shape[1])
        let logD1 = (positive / (positive + (noise + eps))).log()
        let logD0 = ((negative + (noise + eps)).reciprocal() * noise).log()
        return -(logD1.sum() + logD0.sum()) / Float(b)
    }

    /// `memory` with each row in `rows` replaced by normalise(momentum·row + (1 − momentum)·value).
    func updated(_ memory: Tensor, rows: [Int], with values: Tensor) -> Tensor {
        let d = memory.shape[1]
        var m = memory.scalars
        let v = values.scalars
        for (r, i) in rows.enumerated() {
            var norm: Float = 0
            for j in 0..<d { let x = m[i * d + j] * momentum + v[r * d + j] * (1 - momentum); m[i * d + j] = x; norm += x * x }
            let s = 1 / norm.squareRoot()
            for j in 0..<d { m[i * d + j] *= s }
        }
        return Tensor(m, shape: memory.shape)
    }
}
