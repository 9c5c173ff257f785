/// Batch normalisation over NCHW (or [N, C]) inputs. The kernels run in whatever channel-blocked
/// layout the input was produced in (a convolution's output stays in oneDNN's layout).
extension Tensor {
    /// The layout per-channel kernels should use for this tensor: its own dense channel-blocked
    /// oneDNN layout when it has one, else plain.
    func channelFormat() -> (DNNLFormat, ChannelLayout) {
        precondition(rank == 2 || rank == 4, "batch norm: input must be [N, C] or [N, C, H, W], got \(shape)")
        let hw = rank == 4 ? shape[2] * shape[3] : 1
        if let (f, block) = denseChannelBlocked {
            return (f, ChannelLayout(n: shape[0], c: shape[1], hw: hw, block: block))
        }
        return (DNNLFormat.plain(shape), ChannelLayout(n: shape[0], c: shape[1], hw: hw))
    }

    var channelBroadcastShape: [Int] { rank == 4 ? [1, shape[1], 1, 1] : [1, shape[1]] }
    var channelAxes: [Int] { rank == 4 ? [0, 2, 3] : [0] }

    /// `y[n,c,…] = x[n,c,…]·scale[c] + shift[c]`: the per-channel affine map of batch norm, followed
    /// by a ReLU in the same pass when `relu`.
    public func channelAffine(scale: Tensor, shift: Tensor, relu: Bool = false) -> Tensor {
        let (format, layout) = channelFormat()
        precondition(scale.shape == [layout.c] && shift.shape == [layout.c],
                     "channelAffine: scale \(scale.shape) / shift \(shift.shape), expected [\(layout.c)]")
        let storage = TensorStorage(count: format.elementCount)
        NormalizationKernels.channelAffine(data(in: format), layout, scale: scale.pointer, shift: shift.pointer, relu: relu, storage.pointer)
        return Tensor.recorded(relu ? "channelAffineReLU" : "channelAffine", storage: storage, format: format, inputs: [self, scale, shift],
                               backward: Derivatives.channelAffine(self, scale, relu: relu))
    }

    /// Training-mode batch norm with batch statistics, optionally followed by a fused ReLU
    /// (`max(bn(x), 0)` in the same pass, and the mask folded into the backward). Returns the output
    /// and the batch's mean and biased variance (constants, for the running-statistics update).
    ///
    /// Backward: fused kernels; when the backward pass is recorded (second order), their values are
    /// recorded as ops whose derivative is the composite formula (`withCompositeDerivative`).
    public func batchNormTraining(weight: Tensor, bias: Tensor, eps: Float = 1e-5,
                                  fusedReLU: Bool = false) -> (output: Tensor, mean: Tensor, variance: Tensor) {
        if let group = Replicas.current { return batchNormTraining(across: group, weight: weight, bias: bias, eps: eps, fusedReLU: fusedReLU) }
        let (format, layout) = channelFormat()
        let c = layout.c
        precondition(weight.shape == [c] && bias.shape == [c], "batchNorm: weight \(weight.shape) / bias \(bias.shape), expected [\(c)]")
        precondition(layout.n * layout.hw > 1, "batchNorm: expected more than one value per channel in training mode, got input \(shape)")
        let x = data(in: format)
        let mean = TensorStorage(count: c), variance = TensorStorage(count: c)
        NormalizationKernels.statistics(x, layout, mean: mean.pointer, variance: variance.pointer)
        let invstd = TensorStorage(count: c), scale = TensorStorage(count: c), shift = TensorStorage(count: c)
        for i in 0..<c {
            invstd.pointer[i] = 1 / (variance.pointer[i] + eps).squareRoot()
            // y = x·(γ·invstd) + (β − μ·γ·invstd)
            scale.pointer[i] = weight.pointer[i] * invstd.pointer[i]
            shift.pointer[i] = bias.pointer[i] - mean.pointer[i] * scale.pointer[i]
        }
        let out = TensorStorage(count: format.elementCount)
        NormalizationKernels.channelAffine(x, layout, scale: scale.pointer, shift: shift.pointer, relu: fusedReLU, out.pointer)
        let saved = BatchNormSaved(format: format, layout: layout, mean: mean, invstd: invstd, eps: eps, fusedReLU: fusedReLU)
        let y = Tensor.recorded(fusedReLU ? "batchNormReLU" : "batchNorm", storage: out, format: format,
                                inputs: [self, weight, bias], backward: Derivatives.batchNorm(self, weight, saved))
        return (y, Tensor(storage: mean, shape: [c]), Tensor(storage: variance, shape: [c]))
    }

    /// Synchronised batch norm: training-mode batch norm whose statistics are those of the whole
    /// batch, every process of `group` holding an equal slice of it, as one process with
    /// the whole batch computes them up to the order of the sums. Written with differentiable ops
    /// (the per-channel sums are summed across the group), so its derivatives of every order follow
    /// from the table, the cross-process sums included. Returns the output and the whole batch's
    /// mean and biased variance (constants).
    func batchNormTraining(across group: any ReplicaGroup, weight: Tensor, bias: Tensor, eps: Float,
                           fusedReLU: Bool) -> (output: Tensor, mean: Tensor, variance: Tensor) {
        let c = shape[1]
        precondition(weight.shape == [c] && bias.shape == [c], "batchNorm: weight \(weight.shape) / bias \(bias.shape), expected [\(c)]")
        let axes = channelAxes, broadcast = channelBroadcastShape
        let total = Float(count / c * group.size)
        precondition(total > 1, "batchNorm: expected more than one value per channel in training mode, got \(total) over the group")
        let mean = sum(axes: axes).summedAcrossReplicas(group).scaled(by: 1 / total)
        let centered = self - mean.reshaped(broadcast)
        let variance = centered.square().sum(axes: axes).summedAcrossReplicas(group).scaled(by: 1 / total)
        let scale = weight * (variance + eps).rsqrt()
        let y = centered * scale.reshaped(broadcast) + bias.reshaped(broadcast)
        return (fusedReLU ? y.relu() : y, mean.detached(), variance.detached())
    }

    /// Batch norm's backward by the fused kernels: the gradients of x, γ and β (where `need`) for
    /// the output gradient `g`, with the statistics saved by the forward. When the backward pass is
    /// recorded (second order), the kernels' values are recorded as ops whose derivative is the
    /// closed form `Derivatives.batchNormBackward`, with the statistics recomputed from x, so that
    /// their dependence on x is differentiated too.
    static func batchNormBackward(_ g: Tensor, _ x: Tensor, _ weight: Tensor, output: Tensor, _ saved: BatchNormSaved,
                                  need: [Bool]) -> [Tensor?] {
        let (format, layout, c) = (saved.format, saved.layout, saved.layout.c)
        let sumGy = TensorStorage(count: c), sumGyCentered = TensorStorage(count: c)
        let gp = g.data(in: format), xp = x.data(in: format)
        let mask = saved.fusedReLU ? output.data(in: format) : nil
        NormalizationKernels.channelSums(gp, xp, center: saved.mean.pointer, mask: mask.map { UnsafePointer($0) }, layout,
                                         sumGy: sumGy.pointer, sumGyCentered: sumGyCentered.pointer)
        // Σ gy·x̂ = invstd·Σ gy·(x − μ)
        let sumGyXhat = Tensor.make([c]) { p, _ in
            for i in 0..<c { p[i] = saved.invstd.pointer[i] * sumGyCentered.pointer[i] }
        }
        var gx: Tensor? = nil
        if need[0] {
            let storage = TensorStorage(count: format.elementCount)
            NormalizationKernels.batchNormBackward(gp, xp, mask: mask.map { UnsafePointer($0) }, layout, mean: saved.mean.pointer,
                                                   invstd: saved.invstd.pointer, gamma: weight.pointer,
                                                   sumGy: sumGy.pointer, sumGyXhat: sumGyXhat.pointer, storage.pointer)
            gx = Tensor(storage: storage, format: format)
        }
        let sumGyTensor = Tensor(storage: sumGy, shape: [c])
        guard GradMode.isEnabled else { return [gx, need[1] ? sumGyXhat : nil, need[2] ? sumGyTensor : nil] }
        let reluMask = saved.fusedReLU ? output.detached() : nil
        let inputs = [g, x, weight]
        func composite(_ index: Int) -> ([Tensor]) -> Tensor {
            { p in
                let gBN = reluMask.map { p[0].masked(by: $0) } ?? p[0]
                if index == 2 { return gBN.sum(axes: p[1].channelAxes) }
                var which = [false, false, false]
                which[index] = true
                return Derivatives.batchNormBackward(gBN, p[1], weight: p[2], eps: saved.eps, need: which)[index]!
            }
        }
        let direct = BatchNormDoubleBackward(g: g, x: x, weight: weight, reluMask: reluMask, saved: saved,
                                             sumGy: sumGy, sumGyCentered: sumGyCentered)
        return [gx.map { withCompositeDerivative("batchNormBackward", value: $0, inputs: inputs, direct: direct.ofInputGradient, composite: composite(0)) },
                need[1] ? withCompositeDerivative("batchNormWeightGradient", value: sumGyXhat, inputs: inputs,
                                                  direct: direct.ofWeightGradient, composite: composite(1)) : nil,
                need[2] ? withCompositeDerivative("batchNormBiasGradient", value: sumGyTensor, inputs: inputs,
                                                  direct: direct.ofBiasGradient, composite: composite(2)) : nil]
    }

    /// Eval-mode batch norm with given statistics (an affine map per channel), optionally with a ReLU fused into the same pass.
    public func batchNormInference(weight: Tensor, bias: Tensor, runningMean: Tensor, runningVariance: Tensor, eps: Float = 1e-5,
                                   fusedReLU: Bool = false) -> Tensor {
        Tensor.traced(.batchNorm(eps: eps, fusedReLU: fusedReLU), [self, weight, bias, runningMean, runningVariance]) {
            let scale = weight * (runningVariance + eps).rsqrt()
            let shift = bias - runningMean * scale
            return channelAffine(scale: scale, shift: shift, relu: fusedReLU)
        }
    }
}

/// The derivatives of the fused backward's results ∂x, ∂γ, ∂β with respect to its inputs (the
/// output gradient, x, γ) by fused kernels (`NormalizationKernels.batchNorm…GradientBackward`):
/// the `direct` rules of their composite derivatives, for passes that are not recorded.
struct BatchNormDoubleBackward {
    let g: Tensor, x: Tensor, weight: Tensor, reluMask: Tensor?
    let saved: BatchNormSaved
    /// The first backward's Σ g′ and Σ g′·(x − μ) per channel (g′: g masked by a fused ReLU)
    let sumGy: TensorStorage, sumGyCentered: TensorStorage

    private var format: DNNLFormat { saved.format }
    private func fresh(_ wanted: Bool) -> TensorStorage? { wanted ? TensorStorage(count: format.elementCount) : nil }
    private var mask: UnsafePointer<Float>? { reluMask.map { UnsafePointer($0.data(in: format)) } }

    /// [∂g, ∂x, ∂γ] of ⟨u, ∂x⟩
    func ofInputGradient(_ u: Tensor, _: Tensor, _ need: [Bool]) -> [Tensor?] {
        let gradG = fresh(need[0]), gradX = fresh(need[1])
        let gradGamma = need[2] ? TensorStorage(count: saved.layout.c) : nil
        NormalizationKernels.batchNormInputGradientBackward(u.data(in: format), g.data(in: format), x.data(in: format), mask: mask, saved.layout,
                                                            mean: saved.mean.pointer, invstd: saved.invstd.pointer, gamma: weight.pointer,
                                                            sumGy: sumGy.pointer, sumGyCentered: sumGyCentered.pointer,
                                                            gradGy: gradG?.pointer, gradX: gradX?.pointer, gradGamma: gradGamma?.pointer)
        return [gradG.map { Tensor(storage: $0, format: format) }, gradX.map { Tensor(storage: $0, format: format) },
                gradGamma.map { Tensor(storage: $0, shape: [saved.layout.c]) }]
    }

    /// [∂g, ∂x, nil] of ⟨a, ∂γ⟩ (∂γ does not depend on γ)
    func ofWeightGradient(_ a: Tensor, _: Tensor, _ need: [Bool]) -> [Tensor?] {
        let gradG = fresh(need[0]), gradX = fresh(need[1])
        NormalizationKernels.batchNormWeightGradientBackward(a.pointer, g.data(in: format), x.data(in: format), mask: mask, saved.layout,
                                                             mean: saved.mean.pointer, invstd: saved.invstd.pointer,
                                                             sumGy: sumGy.pointer, sumGyCentered: sumGyCentered.pointer,
                                                             gradGy: gradG?.pointer, gradX: gradX?.pointer)
        return [gradG.map { Tensor(storage: $0, format: format) }, gradX.map { Tensor(storage: $0, format: format) }, nil]
    }

    /// [∂g, nil, nil] of ⟨b, ∂β⟩ (∂β = Σ g′ depends on g alone)
    func ofBiasGradient(_ b: Tensor, _: Tensor, _ need: [Bool]) -> [Tensor?] {
        guard let gradG = fresh(need[0]) else { return [nil, nil, nil] }
        NormalizationKernels.batchNormBiasGradientBackward(b.pointer, x.data(in: format), mask: mask, saved.layout, gradG.pointer)
        return [Tensor(storage: gradG, format: format), nil, nil]
    }
}

/// What training-mode batch norm saves for its backward: the layout it ran in and the batch's
/// mean and inverse standard deviation per channel.
struct BatchNormSaved {
    let format: DNNLFormat, layout: ChannelLayout
    let mean: TensorStorage, invstd: TensorStorage
    let eps: Float, fusedReLU: Bool
}
