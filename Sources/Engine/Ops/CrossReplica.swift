/// Values combined across the processes of a data-parallel run (`ReplicaGroup`). Both ops are
/// differentiable and their derivatives are collectives of the same group, so gradients of every
/// order through them are exact: every process runs the same backward pass, and the collectives of
/// the backward meet in the same order everywhere.
extension Tensor {
    /// The elementwise sum of this tensor over `group`'s processes (the same shape on each).
    /// Derivative: the same sum of the output gradients (the sum feeds every process's loss).
    public func summedAcrossReplicas(_ group: any ReplicaGroup) -> Tensor {
        let storage = TensorStorage(count: count)
        storage.pointer.update(from: pointer, count: count)
        group.sum(UnsafeMutableBufferPointer(start: storage.pointer, count: count))
        return Tensor.recorded("crossReplicaSum", storage: storage, shape: shape, inputs: [self],
                               backward: Derivatives.crossReplicaSum(group))
    }

    /// Every process's tensor (the same shape on each) concatenated along axis 0 in rank order:
    /// `[size·n, …]` from `[n, …]`. Derivative: this process's rows of the output gradients summed
    /// over the group.
    public func gatheredAcrossReplicas(_ group: any ReplicaGroup) -> Tensor {
        precondition(rank >= 1, "gatheredAcrossReplicas: needs a tensor with a first axis, got shape \(shape)")
        let storage = TensorStorage(count: count * group.size)
        group.gather(UnsafeBufferPointer(start: pointer, count: count), into: UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
        return Tensor.recorded("crossReplicaGather", storage: storage, shape: [shape[0] * group.size] + shape.dropFirst(), inputs: [self],
                               backward: Derivatives.crossReplicaGather(group, rows: shape[0]))
    }
}
