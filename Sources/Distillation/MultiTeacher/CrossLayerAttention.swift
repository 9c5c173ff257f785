import Engine
import NN

/// SemCKD's semantic calibration (Chen et al. 2021): every student stage may learn from every
/// teacher stage, with per-sample weights from attention between them. Each stage's B×B similarity
/// of flattened maps is embedded (query for student stages, key for teacher stages: linear → ReLU →
/// linear, L2-normalised); softmax over teacher stages of query·key gives w_bij; each (i, j) pair has
/// its own projection (1×1 → BN → ReLU → 3×3 → BN → ReLU → 1×1, width 2·C_t) of the student map,
/// pooled to the smaller size; the loss is Σ_b Σ_ij w_bij · MSE_bij / (B · student stages). In a
/// data-parallel step the similarities are the whole batch's (`Replicas.current`).
public final class CrossLayerAttention: Module {
    /// linear → ReLU → linear, then rows L2-normalised.
    public final class Embedding: Module {
        public let linear1: Linear, linear2: Linear
        init(_ dimIn: Int, _ dimOut: Int) { linear1 = Linear(dimIn, 2 * dimOut); linear2 = Linear(2 * dimOut, dimOut); super.init() }
        func callAsFunction(_ x: Tensor) -> Tensor {
            let y = linear2(linear1(x).relu())
            return y / (y.square().sum(axes: [1], keepDims: true) + 1e-24).sqrt()
        }
    }

    public let queries: [Embedding], keys: [Embedding]
    /// Projection of student stage i for teacher stage j at index i·(teacher stages) + j.
    public let projections: [Sequential]
    public let batchSize: Int

    public init(studentChannels: [Int], teacherChannels: [Int], batchSize: Int, factor: Int = 4) {
        let d = max(batchSize / factor, 1)
        queries = studentChannels.map { _ in Embedding(batchSize, d) }
        keys = teacherChannels.map { _ in Embedding(batchSize, d) }
        projections = studentChannels.flatMap { s in teacherChannels.map { t in
            Sequential(Conv2d(s, 2 * t, kernelSize: 1, bias: false), BatchNorm2d(2 * t), ReLU(),
                       Conv2d(2 * t, 2 * t, kernelSize: 3, padding: 1, bias: false), BatchNorm2d(2 * t), ReLU(),
                       Conv2d(2 * t, t, kernelSize: 1, bias: false))
        } }
        self.batchSize = batchSize
        super.init()
    }

    /// The loss and the attention weights `[B, student stages, teacher stages]` (as `[B, S·T]`).
    public func loss(student: [Tensor], teacher: [Tensor]) -> (loss: Tensor, weights: Tensor) {
        precondition(student.count == queries.count && teacher.count == keys.count,
                     "SemCKD: \(student.count)/\(teacher.count) stages for \(queries.count)/\(keys.count)")
        let b = student[0].shape[0]
        // In a data-parallel step this process's rows `[b, B]` of the whole batch's similarities
        // (every process's maps gathered; differentiably for the student's).
        let group = Replicas.current
        precondition(b * (group?.size ?? 1) == batchSize, "SemCKD: batch of \(b * (group?.size ?? 1)), the attention was built for batches of \(batchSize)")
        func similarity(_ f: Tensor) -> Tensor {
            let flat = f.reshaped([b, f.count / b])
            return flat.matmul(group.map { flat.gatheredAcrossReplicas($0) } ?? flat, transposeOther: true)
        }
        let q = zip(queries, student).map { $0(similarity($1)) }
        let k = zip(keys, teacher).map { $0(similarity($1.detached())) }
        var total = Tensor(scalar: 0)
        var weights: [Tensor] = []
        for (i, s) in student.enumerated() {
            let energy = Tensor.concat(k.map { (q[i] * $0).sum(axes: [1], keepDims: true) }, axis: 1)
            let w = energy.softmax(axis: 1)
            weights.append(w)
            for (j, t) in teacher.enumerated() {
                let (sm, tm) = Tensor.matchingSpatialSize(student: s, teacher: t)
                let mse = meanSquaredError(projections[i * teacher.count + j](sm), tm, reduction: .none)
                total = total + (w.slice(axis: 1, j..<(j + 1)).reshaped([b]) * mse).sum()
            }
        }
        return (total / Float(b * student.count), Tensor.concat(weights, axis: 1))
    }
}
