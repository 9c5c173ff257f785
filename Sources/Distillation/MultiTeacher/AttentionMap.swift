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
