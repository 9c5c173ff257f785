/// Batch normalisation over NCHW (or [N, C]) inputs.
extension Tensor {
    /// `y[n,c,…] = x[n,c,…]·scale[c] + shift[c]`: the per-channel affine map of batch norm.
    public func channelAffine(scale: Tensor, shift: Tensor) -> Tensor {
        let (n, c, hw) = channelLayout()
        precondition(scale.shape == [c] && shift.shape == [c], "channelAffine: scale \(scale.shape) / shift \(shift.shape), expected [\(c)]")
        let storage = TensorStorage(count: count)
        NormalizationKernels.channelAffine(pointer, n: n, c: c, hw: hw, scale: scale.pointer, shift: shift.pointer, storage.pointer)
        return Tensor.recorded("channelAffine", storage: storage, shape: shape, inputs: [self, scale, shift]) { [self] g, _, need in
            let axes = self.rank == 2 ? [0] : [0, 2, 3]
            let bshape = self.channelBroadcastShape
            return [need[0] ? g * scale.reshaped(bshape) : nil,
                    need[1] ? (g * self).sum(axes: axes) : nil,
                    need[2] ? g.sum(axes: axes) : nil]
        }
    }

    func channelLayout() -> (Int, Int, Int) {
        precondition(rank == 2 || rank == 4, "batch norm: input must be [N, C] or [N, C, H, W], got \(shape)")
        return (shape[0], shape[1], rank == 4 ? shape[2] * shape[3] : 1)
    }

    var channelBroadcastShape: [Int] { rank == 4 ? [1, shape[1], 1, 1] : [1, shape[1]] }

    /// Training-mode batch norm with batch statistics. Returns the output and the batch's mean and
    /// biased variance (constants, for the running-statistics update).
    ///
    /// Backward: a fused kernel when the backward pass is not recorded; when it is (second order),
    /// the same formula in differentiable ops, with the statistics recomputed from `x` so that their
    /// dependence on `x` is differentiated too.
    public func batchNormTraining(weight: Tensor, bias: Tensor, eps: Float = 1e-5) -> (output: Tensor, mean: Tensor, variance: Tensor) {
        let (n, c, hw) = channelLayout()
        precondition(weight.shape == [c] && bias.shape == [c], "batchNorm: weight \(weight.shape) / bias \(bias.shape), expected [\(c)]")
        precondition(n * hw > 1, "batchNorm: expected more than one value per channel in training mode, got input \(shape)")
        let mean = TensorStorage(count: c), variance = TensorStorage(count: c)
        NormalizationKernels.statistics(pointer, n: n, c: c, hw: hw, mean: mean.pointer, variance: variance.pointer)
        let invstd = Tensor.make([c]) { p, _ in for i in 0..<c { p[i] = 1 / (variance.pointer[i] + eps).squareRoot() } }
        let meanT = Tensor(storage: mean, shape: [c]), varT = Tensor(storage: variance, shape: [c])
        // y = x·(γ·invstd) + (β − μ·γ·invstd)
        let scale = TensorStorage(count: c), shift = TensorStorage(count: c)
        for i in 0..<c {
            scale.pointer[i] = weight.pointer[i] * invstd.pointer[i]
            shift.pointer[i] = bias.pointer[i] - mean.pointer[i] * scale.pointer[i]
        }
        let out = TensorStorage(count: count)
        NormalizationKernels.channelAffine(pointer, n: n, c: c, hw: hw, scale: scale.pointer, shift: shift.pointer, out.pointer)
        let y = Tensor.recorded("batchNorm", storage: out, shape: shape, inputs: [self, weight, bias]) { [self] g, _, need in
            let axes = self.rank == 2 ? [0] : [0, 2, 3]
            if GradMode.isEnabled {
                return self.batchNormBackwardComposite(g, weight: weight, eps: eps, need: need, axes: axes)
            }
            let sumGy = TensorStorage(count: c), sumGyX = TensorStorage(count: c)
            NormalizationKernels.channelSums(g.pointer, self.pointer, n: n, c: c, hw: hw, sumGy: sumGy.pointer, sumGyX: sumGyX.pointer)
            // Σ gy·x̂ = invstd·(Σ gy·x − μ·Σ gy)
            let sumGyXhat = Tensor.make([c]) { p, _ in
                for i in 0..<c { p[i] = invstd.pointer[i] * (sumGyX.pointer[i] - mean.pointer[i] * sumGy.pointer[i]) }
            }
            var gx: Tensor? = nil
            if need[0] {
                let storage = TensorStorage(count: self.count)
                NormalizationKernels.batchNormBackward(g.pointer, self.pointer, n: n, c: c, hw: hw, mean: mean.pointer, invstd: invstd.pointer,
                                                       gamma: weight.pointer, sumGy: sumGy.pointer, sumGyXhat: sumGyXhat.pointer, storage.pointer)
                gx = Tensor(storage: storage, shape: self.shape)
            }
            return [gx, need[1] ? sumGyXhat : nil, need[2] ? Tensor(storage: sumGy, shape: [c]) : nil]
        }
        return (y, meanT, varT)
    }

    private func batchNormBackwardComposite(_ g: Tensor, weight: Tensor, eps: Float, need: [Bool], axes: [Int]) -> [Tensor?] {
        let bshape = channelBroadcastShape
        let centered = self - mean(axes: axes, keepDims: true)
        let invstd = (centered.square().mean(axes: axes, keepDims: true) + eps).rsqrt()
        let xhat = centered * invstd
        let gammaB = weight.reshaped(bshape)
        var gx: Tensor? = nil
        if need[0] {
            let meanG = g.mean(axes: axes, keepDims: true)
            let meanGX = (g * xhat).mean(axes: axes, keepDims: true)
            gx = gammaB * invstd * (g - meanG - xhat * meanGX)
        }
        return [gx, need[1] ? (g * xhat).sum(axes: axes) : nil, need[2] ? g.sum(axes: axes) : nil]
    }

    /// Eval-mode batch norm with given statistics: an affine map per channel.
    public func batchNormInference(weight: Tensor, bias: Tensor, runningMean: Tensor, runningVariance: Tensor, eps: Float = 1e-5) -> Tensor {
        let scale = weight * (runningVariance + eps).rsqrt()
        let shift = bias - runningMean * scale
        return channelAffine(scale: scale, shift: shift)
    }
}
