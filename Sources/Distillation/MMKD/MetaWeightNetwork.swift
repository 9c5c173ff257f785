import Engine
import NN

/// MMKD's meta-weight network (DESIGN.md §3, steps 3 and 5): per sample, a two-layer MLP with ReLU
/// maps the concatenated per-teacher inputs and the student's (gradient stopped) to a softmax over
/// the K teachers. Input width D(K+1), hidden width D(K+1)/2; D = C for the logit network, D = B
/// (rows of batch similarity matrices) for the feature network.
public final class MetaWeightNetwork: Module {
    public let fc1: Linear, fc2: Linear
    public let teachers: Int, width: Int

    public init(teachers: Int, width: Int) {
        precondition(teachers >= 1 && width >= 1, "MetaWeightNetwork: needs at least one teacher and a positive width")
        self.teachers = teachers; self.width = width
        fc1 = Linear(width * (teachers + 1), width * (teachers + 1) / 2)
        fc2 = Linear(width * (teachers + 1) / 2, teachers)
        super.init()
    }

    /// Weights `[B, K]` (rows sum to 1) from per-teacher inputs `[B, D]` and the student's `[B, D]`
    /// (detached here: the student does not learn through its weights).
    public func weights(teacherInputs: [Tensor], studentInput: Tensor) -> Tensor {
        precondition(teacherInputs.count == teachers, "MetaWeightNetwork: \(teacherInputs.count) teacher inputs for \(teachers) teachers")
        for t in teacherInputs + [studentInput] {
            precondition(t.rank == 2 && t.shape[1] == width, "MetaWeightNetwork: input \(t.shape), expected [B, \(width)]")
        }
        let x = Tensor.concat(teacherInputs + [studentInput.detached()], axis: 1)
        return fc2(fc1(x).relu()).softmax(axis: 1)
    }
}

extension Tensor {
    /// The batch similarity matrix of a feature map `[B, …]`: `G = F·Fᵀ` for the flattened `F` (B × D),
    /// with each row L2-normalised when `normalised` (similarity-preserving KD, the default) or raw
    /// (the official MMKD code; see DESIGN.md §3.5 on why that never learns). In a data-parallel
    /// step (`Replicas.current`) this process's rows of the whole batch's matrix: its slice `[b, …]`
    /// against every process's, `[b, B]`; `wholeBatch`, when given, is every process's `self`
    /// already gathered (a constant: nothing flows back through it).
    public func batchSimilarity(normalised: Bool = true, wholeBatch: Tensor? = nil) -> Tensor {
        let f = flattened(from: 1)
        let all = wholeBatch.map { $0.flattened(from: 1) } ?? Replicas.current.map { f.gatheredAcrossReplicas($0) } ?? f
        let g = f.matmul(all, transposeOther: true)
        guard normalised else { return g }
        return g / (g.square().sum(axes: [1], keepDims: true) + 1e-12).sqrt()
    }
}
