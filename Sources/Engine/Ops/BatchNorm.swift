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
    /// Within a data-parallel step (`Replicas.current`) the statistics are the whole batch's, every
    /// process of the group holding an equal slice of it (synchronised batch norm): each process's
    /// mean and variance are gathered and combined in rank order, so every process normalises with
    /// the same values, those of one process with the whole batch up to the order of the sums. The
    /// backward sums its per-channel reductions over the group likewise (derivatives of every order).
    ///
    /// Backward: fused kernels; when the backward pass is recorded (second order), their values are
    /// recorded as ops whose derivative is the composite formula (`withCompositeDerivative`).
    public func batchNormTraining(weight: Tensor, bias: Tensor, eps: Float = 1e-5,
                                  fusedReLU: Bool = false) -> (output: Tensor, mean: Tensor, variance: Tensor) {
        let group = Replicas.current
        let (format, layout) = channelFormat()
        let c = layout.c
        precondition(weight.shape == [c] && bias.shape == [c], "batchNorm: weight \(weight.shape) / bias \(bias.shape), expected [\(c)]")
        let total = layout.n * layout.hw * (group?.size ?? 1)
        precondition(total > 1, "batchNorm: expected more than one value per channel in training mode, got input \(shape)"
                     + (group.map { " on each of \($0.size) processes" } ?? ""))
        let x = data(in: format)
        let mean = TensorStorage(count: c), variance = TensorStorage(count: c)
        NormalizationKernels.statistics(x, layout, mean: mean.pointer, variance: variance.pointer)
        if let group { Self.combineStatistics(across: group, mean: mean, variance: variance) }
        let invstd = TensorStorage(count: c), scale = TensorStorage(count: c), shift = TensorStorage(count: c)
        for i in 0..<c {
            invstd.pointer[i] = 1 / (variance.pointer[i] + eps).squareRoot()
            // y = x·(γ·invstd) + (β − μ·γ·invstd)
            scale.pointer[i] = weight.pointer[i] * invstd.pointer[i]
            shift.pointer[i] = bias.pointer[i] - mean.pointer[i] * scale.pointer[i]
        }
        let out = TensorStorage(count: format.elementCount)
        NormalizationKernels.channelAffine(x, layout, scale: scale.pointer, shift: shift.pointer, relu: fusedReLU, out.pointer)
        let saved = BatchNormSaved(format: format, layout: layout, mean: mean, invstd: invstd, eps: eps, fusedReLU: fusedReLU,
                                   group: group, total: total)
        let y = Tensor.recorded(fusedReLU ? "batchNormReLU" : "batchNorm", storage: out, format: format,
                                inputs: [self, weight, bias], backward: Derivatives.batchNorm(self, weight, saved))
        return (y, Tensor(storage: mean, shape: [c]), Tensor(storage: variance, shape: [c]))
    }

    /// Replaces this process's per-channel mean and biased variance (of an equal slice) by those
    /// of the group's whole batch: every process's pair is gathered and combined in rank order, in
    /// double (Chan's formula for equal counts: the mean of the means; the mean of the variances
    /// plus the variance of the means), so the result is the same on every process. One collective
    /// per call, of float32 statistics, as PyTorch's SyncBatchNorm (`batch_norm_gather_stats_with_counts`).
    static func combineStatistics(across group: any ReplicaGroup, mean: TensorStorage, variance: TensorStorage) {
        let c = mean.count, size = group.size
        var local = [Float](repeating: 0, count: 2 * c)
        for i in 0..<c { local[i] = mean.pointer[i]; local[c + i] = variance.pointer[i] }
        var all = [Float](repeating: 0, count: 2 * c * size)
        local.withUnsafeBufferPointer { l in all.withUnsafeMutableBufferPointer { group.gather(l, into: $0) } }
        for i in 0..<c {
            var m = 0.0
            for r in 0..<size { m += Double(all[r * 2 * c + i]) }
            m /= Double(size)
            var v = 0.0
            for r in 0..<size {
                let d = Double(all[r * 2 * c + i]) - m
                v += Double(all[r * 2 * c + c + i]) + d * d
            }
            mean.pointer[i] = Float(m)
            variance.pointer[i] = Float(v / Double(size))
        }
    }

    /// Batch norm's backward by the fused kernels: the gradients of x, γ and β (where `need`) for
    /// the output gradient `g`, with the statistics saved by the forward (`output`, the forward's,
    /// only with a fused ReLU: its mask). When the backward pass is
    /// recorded (second order), the kernels' values are recorded as ops whose derivative is the
    /// closed form `Derivatives.batchNormBackward`, with the statistics recomputed from x, so that
    /// their dependence on x is differentiated too.
    static func batchNormBackward(_ g: Tensor, _ x: Tensor, _ weight: Tensor, output: Tensor?, _ saved: BatchNormSaved,
                                  need: [Bool]) -> [Tensor?] {
        let (format, layout, c) = (saved.format, saved.layout, saved.layout.c)
        let sumGy = TensorStorage(count: c), sumGyCentered = TensorStorage(count: c)
        let gp = g.data(in: format), xp = x.data(in: format)
        // A recorded pass keeps g for the derivatives, which read it in this layout only: the
        // layout it came in (a convolution's) is not kept beside it.
        if GradMode.isEnabled { g.keepOnly(format) }
        let mask = saved.fusedReLU ? output!.data(in: format) : nil
        NormalizationKernels.channelSums(gp, xp, center: saved.mean.pointer, mask: mask.map { UnsafePointer($0) }, layout,
                                         sumGy: sumGy.pointer, sumGyCentered: sumGyCentered.pointer)
        // Σ gy·x̂ = invstd·Σ gy·(x − μ): this process's (its share of ∂γ)
        let sumGyXhat = Tensor.make([c]) { p, _ in
            for i in 0..<c { p[i] = saved.invstd.pointer[i] * sumGyCentered.pointer[i] }
        }
        // ∂x needs the whole batch's sums: over the group when there is one (one sum for both).
        var whole = (sumGy: sumGy, sumGyCentered: sumGyCentered)
        var gx: Tensor? = nil
        if need[0] {
            var wholeSumGyXhat = sumGyXhat
            if let group = saved.group {
                whole = summedAcrossReplicas(sumGy, sumGyCentered, group)
                wholeSumGyXhat = Tensor.make([c]) { p, _ in
                    for i in 0..<c { p[i] = saved.invstd.pointer[i] * whole.sumGyCentered.pointer[i] }
                }
            }
            let storage = TensorStorage(count: format.elementCount)
            NormalizationKernels.batchNormBackward(gp, xp, mask: mask.map { UnsafePointer($0) }, layout, count: saved.total,
                                                   mean: saved.mean.pointer, invstd: saved.invstd.pointer, gamma: weight.pointer,
                                                   sumGy: whole.sumGy.pointer, sumGyXhat: wholeSumGyXhat.pointer, storage.pointer)
            gx = Tensor(storage: storage, format: format)
        }
        let sumGyTensor = Tensor(storage: sumGy, shape: [c])
        guard GradMode.isEnabled else { return [gx, need[1] ? sumGyXhat : nil, need[2] ? sumGyTensor : nil] }
        let reluMask = saved.fusedReLU ? output!.detached() : nil
        let inputs = [g, x, weight]
        func composite(_ index: Int) -> ([Tensor]) -> Tensor {
            { p in
                let gBN = reluMask.map { p[0].masked(by: $0) } ?? p[0]
                if index == 2 { return gBN.sum(axes: p[1].channelAxes) }
                var which = [false, false, false]
                which[index] = true
                return Derivatives.batchNormBackward(gBN, p[1], weight: p[2], eps: saved.eps, need: which, across: saved.group)[index]!
            }
        }
        let direct = BatchNormDoubleBackward(g: g, x: x, weight: weight, reluMask: reluMask, saved: saved,
                                             sumGy: whole.sumGy, sumGyCentered: whole.sumGyCentered,
                                             localSumGy: sumGy, localSumGyCentered: sumGyCentered)
        return [gx.map { withCompositeDerivative("batchNormBackward", value: $0, inputs: inputs, direct: direct.ofInputGradient, composite: composite(0)) },
                need[1] ? withCompositeDerivative("batchNormWeightGradient", value: sumGyXhat, inputs: inputs,
                                                  direct: direct.ofWeightGradient, composite: composite(1)) : nil,
                need[2] ? withCompositeDerivative("batchNormBiasGradient", value: sumGyTensor, inputs: inputs,
                                                  direct: direct.ofBiasGradient, composite: composite(2)) : nil]
    }

    /// Two per-channel sums, each summed over the group (one collective for both).
    static func summedAcrossReplicas(_ a: TensorStorage, _ b: TensorStorage, _ group: any ReplicaGroup)
        -> (sumGy: TensorStorage, sumGyCentered: TensorStorage) {
        let c = a.count
        let both = TensorStorage(count: 2 * c)
        both.pointer.update(from: a.pointer, count: c)
        (both.pointer + c).update(from: b.pointer, count: c)
        group.sum(UnsafeMutableBufferPointer(start: both.pointer, count: 2 * c))
        let first = TensorStorage(count: c), second = TensorStorage(count: c)
        first.pointer.update(from: both.pointer, count: c)
        second.pointer.update(from: both.pointer + c, count: c)
        return (first, second)
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
///
/// In a data-parallel step (`saved.group`), each process's results are functions of every
/// process's g and x (through the whole batch's statistics and sums), and each process computes
/// the derivatives of the group's total ⟨u, ∂x⟩ + ⟨a, ∂γ⟩ + ⟨b, ∂β⟩ with respect to its own slice:
/// the per-channel reductions over g and x are the whole batch's (summed over the group), while
/// ∂γ, like ∂γ and ∂β of the first backward, is this process's share (summed over the group with
/// the other parameter gradients).
struct BatchNormDoubleBackward {
    let g: Tensor, x: Tensor, weight: Tensor, reluMask: Tensor?
    let saved: BatchNormSaved
    /// The first backward's Σ g′ and Σ g′·(x − μ) per channel over the whole batch (g′: g masked
    /// by a fused ReLU); without a group, this process's
    let sumGy: TensorStorage, sumGyCentered: TensorStorage
    /// The same sums over this process's slice alone
    let localSumGy: TensorStorage, localSumGyCentered: TensorStorage

    private var format: DNNLFormat { saved.format }
    private func fresh(_ wanted: Bool) -> TensorStorage? { wanted ? TensorStorage(count: format.elementCount) : nil }
    private var mask: UnsafePointer<Float>? { reluMask.map { UnsafePointer($0.data(in: format)) } }

    /// [∂g, ∂x, ∂γ] of ⟨u, ∂x⟩
    func ofInputGradient(_ u: Tensor, _ need: [Bool]) -> [Tensor?] {
        let gradG = fresh(need[0]), gradX = fresh(need[1])
        let gradGamma = need[2] ? TensorStorage(count: saved.layout.c) : nil
        NormalizationKernels.batchNormInputGradientBackward(u.data(in: format), g.data(in: format), x.data(in: format), mask: mask, saved.layout,
                                                            mean: saved.mean.pointer, invstd: saved.invstd.pointer, gamma: weight.pointer,
                                                            sumGy: sumGy.pointer, sumGyCentered: sumGyCentered.pointer, count: saved.total,
                                                            sumAcrossReplicas: saved.group.map { group in { group.sum($0) } },
                                                            gradGy: gradG?.pointer, gradX: gradX?.pointer, gradGamma: gradGamma?.pointer)
        return [gradG.map { Tensor(storage: $0, format: format) }, gradX.map { Tensor(storage: $0, format: format) },
                gradGamma.map { Tensor(storage: $0, shape: [saved.layout.c]) }]
    }

    /// [∂g, ∂x, nil] of ⟨a, ∂γ⟩ (∂γ does not depend on γ)
    func ofWeightGradient(_ a: Tensor, _ need: [Bool]) -> [Tensor?] {
        let gradG = fresh(need[0]), gradX = fresh(need[1])
        // ∂x goes through the whole batch's statistics: with a group, Σ over processes of each
        // one's a·Σ g′ and a·Σ g′·(x − μ) (a may differ between processes).
        var weighted: [Double]? = nil
        if let group = saved.group, need[1] {
            let c = saved.layout.c
            var w = [Double](repeating: 0, count: 2 * c)
            for i in 0..<c {
                w[i] = Double(a.pointer[i]) * Double(localSumGy.pointer[i])
                w[c + i] = Double(a.pointer[i]) * Double(localSumGyCentered.pointer[i])
            }
            w.withUnsafeMutableBufferPointer { group.sum($0) }
            weighted = w
        }
        NormalizationKernels.batchNormWeightGradientBackward(a.pointer, g.data(in: format), x.data(in: format), mask: mask, saved.layout,
                                                             mean: saved.mean.pointer, invstd: saved.invstd.pointer,
                                                             sumGy: sumGy.pointer, sumGyCentered: sumGyCentered.pointer,
                                                             count: saved.total, weightedSums: weighted,
                                                             gradGy: gradG?.pointer, gradX: gradX?.pointer)
        return [gradG.map { Tensor(storage: $0, format: format) }, gradX.map { Tensor(storage: $0, format: format) }, nil]
    }

    /// [∂g, nil, nil] of ⟨b, ∂β⟩ (∂β = Σ g′ depends on g alone)
    func ofBiasGradient(_ b: Tensor, _ need: [Bool]) -> [Tensor?] {
        guard let gradG = fresh(need[0]) else { return [nil, nil, nil] }
        NormalizationKernels.batchNormBiasGradientBackward(b.pointer, x.data(in: format), mask: mask, saved.layout, gradG.pointer)
        return [Tensor(storage: gradG, format: format), nil, nil]
    }
}

/// What training-mode batch norm saves for its backward: the layout it ran in, the batch's
/// mean and inverse standard deviation per channel, and, in a data-parallel step, the group whose
/// whole batch (`total` values per channel) they are of.
struct BatchNormSaved {
    let format: DNNLFormat, layout: ChannelLayout
    let mean: TensorStorage, invstd: TensorStorage
    let eps: Float, fusedReLU: Bool
    let group: (any ReplicaGroup)?
    /// Values per channel over the whole batch: n·hw, times the group's size
    let total: Int
}
