/// The derivative of every differentiable op, in one table read top to bottom (as PyTorch's
/// `derivatives.yaml` or tinygrad's gradient table).
///
/// An op's forward lives in `Engine/Ops`; when it records itself it names its rule here and passes
/// what the rule needs (shapes, saved indices, the convolution's geometry). A rule receives the
/// gradient `g` of the op's output and which inputs need a gradient (`n[i]`), and returns one
/// gradient per input, nil where none is needed; a rule that also reads the op's output `out` is
/// `.readingOutput` (its node keeps the output's values). A rule captures an input's values only
/// where a formula it may be asked for reads them (`kept(_:for:)`): the graph keeps nothing else.
///
/// **Every rule is written with differentiable `Tensor` ops**, never with kernels or raw pointers.
/// When a backward pass records its graph (`createGraph`), the gradients these rules return are
/// differentiated again by the same table, so gradients of every order come from it. Ops whose
/// derivative runs as a fused kernel (convolution's adjoints, the pooling adjoints, batch norm's
/// backward) are ops of their own with a rule below; batch norm's backward is recorded with the
/// closed form below as its derivative (`withCompositeDerivative`).
///
/// Constants (comparisons, signs, masks, argmax) have no rule: they are never recorded.
enum Derivatives {
    typealias Rule = BackwardRule

    /// `value`, kept by a rule only when `other` requires a gradient: the one formula that reads
    /// `value` (for a product's operands, the other operand's gradient) is then the only one that
    /// can be asked for. A rule that captures nothing it does not read lets the forward pass free
    /// the rest (as PyTorch's saved variables).
    private static func kept(_ value: Tensor, for other: Tensor) -> Tensor? { other.requiresGrad ? value : nil }

    // MARK: - Arithmetic (operands broadcast: each gradient is summed back to its operand's shape)

    /// `a + b` → ∂a = g, ∂b = g
    static func add(_ a: [Int], _ b: [Int]) -> Rule {
        Rule { g, n in [n[0] ? g.sum(toShape: a) : nil, n[1] ? g.sum(toShape: b) : nil] }
    }

    /// `a − b` → ∂a = g, ∂b = −g
    static func sub(_ a: [Int], _ b: [Int]) -> Rule {
        Rule { g, n in [n[0] ? g.sum(toShape: a) : nil, n[1] ? (-g).sum(toShape: b) : nil] }
    }

    /// `a · b` → ∂a = g·b, ∂b = g·a
    static func mul(_ a: Tensor, _ b: Tensor) -> Rule {
        let (sa, sb) = (a.shape, b.shape)
        let (keptA, keptB) = (kept(a, for: b), kept(b, for: a))
        return Rule { g, n in [n[0] ? (g * keptB!).sum(toShape: sa) : nil, n[1] ? (g * keptA!).sum(toShape: sb) : nil] }
    }

    /// `a / b` → ∂a = g / b, ∂b = −(g·a) / b²
    static func div(_ a: Tensor, _ b: Tensor) -> Rule {
        let (sa, sb) = (a.shape, b.shape)
        let keptA = kept(a, for: b)
        return Rule { g, n in [n[0] ? (g / b).sum(toShape: sa) : nil, n[1] ? (-(g * keptA!) / (b * b)).sum(toShape: sb) : nil] }
    }

    /// `−x` → −g
    static var neg: Rule { Rule { g, _ in [-g] } }

    /// `x·s + shift` → g·s
    static func scale(_ s: Float) -> Rule { Rule { g, _ in [g.scaled(by: s)] } }

    /// `maximum(a, b)` → ∂a = g where a ≥ b, ∂b = g where b > a
    static func maximum(_ a: Tensor, _ b: Tensor) -> Rule {
        Rule { g, n in
            let mask = withoutGrad { b.greater(a) }
            let keep = 1 - mask
            return [n[0] ? (g * keep).sum(toShape: a.shape) : nil, n[1] ? (g * mask).sum(toShape: b.shape) : nil]
        }
    }

    /// `x^p` (p constant) → g·x^(p−1)·p
    static func pow(_ x: Tensor, _ p: Float) -> Rule { Rule { g, _ in [g * x.pow(p - 1) * p, nil] } }

    /// `clamp(x, low, high)` → g where low ≤ x ≤ high
    static func clamp(_ x: Tensor, _ low: Float, _ high: Float) -> Rule {
        Rule { g, _ in [g * withoutGrad { x.isWithin(low, high) }] }
    }

    // MARK: - Unary functions

    /// `exp(x)` → g·out
    static var exp: Rule { .readingOutput { g, out, _ in [g * out] } }
    /// `log(x)` → g / x
    static func log(_ x: Tensor) -> Rule { Rule { g, _ in [g / x] } }
    /// `√x` → g / out · ½
    static var sqrt: Rule { .readingOutput { g, out, _ in [g / out * 0.5] } }
    /// `1/√x` → g·out³·(−½)
    static var rsqrt: Rule { .readingOutput { g, out, _ in [g * out * out * out * -0.5] } }
    /// `x²` → g·x·2
    static func square(_ x: Tensor) -> Rule { Rule { g, _ in [g * x * 2] } }
    /// `1/x` → −g·out²
    static var reciprocal: Rule { .readingOutput { g, out, _ in [-(g * out * out)] } }
    /// `σ(x)` → g·out·(1 − out)
    static var sigmoid: Rule { .readingOutput { g, out, _ in [g * out * (1 - out)] } }
    /// `tanh(x)` → g·(1 − out²)
    static var tanh: Rule { .readingOutput { g, out, _ in [g * (1 - out * out)] } }
    /// `|x|` → g·sign(x)
    static func abs(_ x: Tensor) -> Rule { Rule { g, _ in [g * x.sign()] } }
    /// `relu(x)` → g where out > 0 (the mask is a constant)
    static var relu: Rule { .readingOutput { g, out, _ in [g.masked(by: out.detached())] } }
    /// `masked(x, by: r)` (ReLU's backward; linear in x, r a constant) → g masked by r
    static func masked(_ reference: Tensor) -> Rule {
        Rule { g, n in [n[0] ? g.masked(by: reference) : nil, nil] }
    }

    // MARK: - Reductions and broadcasting (each other's derivative)

    /// `sum(x, toShape:)` → g expanded to x's shape (in x's channel-blocked layout, if it had one)
    static func sumTo(_ shape: [Int], layout: DNNLFormat?) -> Rule {
        Rule { g, _ in [g.expanded(to: shape, layout: layout)] }
    }

    /// `expand(x, to:)` → g summed back to x's shape
    static func expand(_ shape: [Int]) -> Rule { Rule { g, _ in [g.sum(toShape: shape)] } }

    // MARK: - Shapes and indexing (each op's derivative is its adjoint)

    /// `reshape(x)` → g reshaped to x's shape
    static func reshape(_ shape: [Int]) -> Rule { Rule { g, _ in [g.reshaped(shape)] } }

    /// `permute(x, order)` → g permuted by the inverse order
    static func permute(inverse: [Int]) -> Rule { Rule { g, _ in [g.permuted(inverse)] } }

    /// `channelsGathered(x, order)` → g gathered by the inverse order
    static func channelsGathered(inverse: [Int]) -> Rule { Rule { g, _ in [g.channelsGathered(inverse)] } }

    /// `concat(parts, axis)` → each part's slice of g
    static func concat(axis: Int, sizes: [Int]) -> Rule {
        Rule { g, n in
            var start = 0
            return sizes.enumerated().map { i, size in
                defer { start += size }
                return n[i] ? g.slice(axis: axis, start ..< start + size) : nil
            }
        }
    }

    /// `slice(x, axis, range)` → g zero-padded back to x's extent
    static func slice(axis: Int, _ range: Range<Int>, extent: Int) -> Rule {
        Rule { g, _ in [g.padded(axis: axis, before: range.lowerBound, after: extent - range.upperBound)] }
    }

    /// `pad(x, axis, before, after)` → the slice of g where x was
    static func pad(axis: Int, before: Int, extent: Int) -> Rule {
        Rule { g, _ in [g.slice(axis: axis, before ..< before + extent)] }
    }

    /// `indexSelect(x, axis, indices)` → g added back at the indices
    static func indexSelect(axis: Int, _ indices: [Int], extent: Int) -> Rule {
        Rule { g, _ in [g.indexAdd(axis: axis, indices, size: extent)] }
    }

    /// `indexAdd(x, axis, indices)` → g selected at the indices
    static func indexAdd(axis: Int, _ indices: [Int]) -> Rule { Rule { g, _ in [g.indexSelect(axis: axis, indices)] } }

    /// `gather(x, axis, indices)` → g scatter-added into x's shape
    static func gather(axis: Int, indices: [Int], shape: [Int]) -> Rule {
        Rule { g, _ in [g.scatterAdd(axis: axis, indices: indices, shape: shape)] }
    }

    /// `scatterAdd(x, axis, indices)` → g gathered at the indices
    static func scatterAdd(axis: Int, indices: [Int], shape: [Int]) -> Rule {
        Rule { g, _ in [g.gather(axis: axis, indices: indices, indexShape: shape)] }
    }

    /// `rowDots(table, rows, v)` (table a constant) → ∂v = rowCombination(table, rows, g)
    static func rowDots(_ table: Tensor, _ rows: [[Int]]) -> Rule {
        Rule { g, _ in [Tensor.rowCombination(table, rows, g)] }
    }

    /// `rowCombination(table, rows, w)` (table a constant) → ∂w = rowDots(table, rows, g)
    static func rowCombination(_ table: Tensor, _ rows: [[Int]]) -> Rule {
        Rule { g, _ in [Tensor.rowDots(table, rows, g)] }
    }

    // MARK: - Across the processes of a data-parallel run (`ReplicaGroup`)

    /// `Σ_ranks x` → Σ_ranks g (every process's loss reads the sum)
    static func crossReplicaSum(_ group: any ReplicaGroup) -> Rule { Rule { g, _ in [g.summedAcrossReplicas(group)] } }

    /// `concat_ranks(x)` along axis 0 → this process's rows of Σ_ranks g
    static func crossReplicaGather(_ group: any ReplicaGroup, rows: Int) -> Rule {
        Rule { g, _ in [g.summedAcrossReplicas(group).slice(axis: 0, group.rank * rows ..< (group.rank + 1) * rows)] }
    }

    // MARK: - Softmax

    /// `softmax(x, axis)` → out·(g − Σ_axis g·out)
    static func softmax(axis: Int) -> Rule {
        .readingOutput { g, out, _ in [out * (g - (g * out).sum(axes: [axis], keepDims: true))] }
    }

    /// `logSoftmax(x, axis)` → g − exp(out)·Σ_axis g
    static func logSoftmax(axis: Int) -> Rule {
        .readingOutput { g, out, _ in [g - out.exp() * g.sum(axes: [axis], keepDims: true)] }
    }

    // MARK: - Matrix products (transposes are flags: each gradient is one product)

    /// `op(a)·op(b)` → ∂a = g·op(b)ᵀ, ∂b = op(a)ᵀ·g, arranged for the four transpose flags
    static func matmul(_ a: Tensor, _ b: Tensor, _ ta: Bool, _ tb: Bool) -> Rule {
        let (a, b) = (kept(a, for: b), kept(b, for: a))
        return Rule { g, n in
            let ga: Tensor?, gb: Tensor?
            switch (ta, tb) {
            case (false, false):
                ga = n[0] ? Tensor.product(g, b!, false, true) : nil; gb = n[1] ? Tensor.product(a!, g, true, false) : nil
            case (true, false):
                ga = n[0] ? Tensor.product(b!, g, false, true) : nil; gb = n[1] ? Tensor.product(a!, g, false, false) : nil
            case (false, true):
                ga = n[0] ? Tensor.product(g, b!, false, false) : nil; gb = n[1] ? Tensor.product(g, a!, true, false) : nil
            case (true, true):
                ga = n[0] ? Tensor.product(b!, g, true, true) : nil; gb = n[1] ? Tensor.product(g, a!, true, true) : nil
            }
            return [ga, gb]
        }
    }

    // MARK: - Convolution (the op and its two adjoints differentiate into one another)

    /// `y = conv(x, w) + bias` → ∂x = backwardData(g, w), ∂w = backwardWeights(x, g), ∂bias = Σ_{n,h,w} g
    static func conv2d(_ x: Tensor, _ w: Tensor, hasBias: Bool, _ geometry: ConvGeometry) -> Rule {
        let (x, w) = (kept(x, for: w), kept(w, for: x))
        return Rule { g, n in
            [n[0] ? Tensor.convBackwardData(g, w!, geometry) : nil,
             n[1] ? Tensor.convBackwardWeights(x!, g, geometry) : nil] + (hasBias ? [n[2] ? g.sum(axes: [0, 2, 3]) : nil] : [])
        }
    }

    /// `gx = backwardData(gy, w)` → ∂gy = conv(g, w), ∂w = backwardWeights(g, gy)
    static func conv2dBackwardData(_ gy: Tensor, _ w: Tensor, _ geometry: ConvGeometry) -> Rule {
        let (gy, w) = (kept(gy, for: w), kept(w, for: gy))
        return Rule { g, n in
            [n[0] ? Tensor.convolution(g, w!, bias: nil, geometry) : nil, n[1] ? Tensor.convBackwardWeights(g, gy!, geometry) : nil]
        }
    }

    /// `gw = backwardWeights(x, gy)` → ∂x = backwardData(gy, g), ∂gy = conv(x, g)
    static func conv2dBackwardWeights(_ x: Tensor, _ gy: Tensor, _ geometry: ConvGeometry) -> Rule {
        let (x, gy) = (kept(x, for: gy), kept(gy, for: x))
        return Rule { g, n in
            [n[0] ? Tensor.convBackwardData(gy!, g, geometry) : nil, n[1] ? Tensor.convolution(x!, g, bias: nil, geometry) : nil]
        }
    }

    // MARK: - Pooling (each op and its adjoint differentiate into one another)

    /// `maxPool2d(x)` → g scattered to the saved arg-max positions
    static func maxPool2d(_ indices: PoolIndices, _ plan: MaxPoolPlan) -> Rule {
        Rule { g, _ in [Tensor.indexScatter(g, indices, plan)] }
    }

    /// `maxPoolBackward(g)` (the scatter) → gathered at the same positions
    static func maxPoolBackward(_ indices: PoolIndices, _ plan: MaxPoolPlan) -> Rule {
        Rule { g, _ in [Tensor.indexGather(g, indices, plan)] }
    }

    /// `maxPoolGather(x)` → scattered to the same positions
    static func maxPoolGather(_ indices: PoolIndices, _ plan: MaxPoolPlan) -> Rule {
        Rule { g, _ in [Tensor.indexScatter(g, indices, plan)] }
    }

    /// `avgPool2d(x)` → g spread evenly over each window
    static func avgPool2d(_ rows: PoolingWindows, _ cols: PoolingWindows, inputShape: [Int]) -> Rule {
        Rule { g, _ in [g.windowAverageBackward(rows: rows, cols: cols, inputShape: inputShape)] }
    }

    /// `avgPool2dBackward(g)` (the spread) → window averages again
    static func avgPool2dBackward(_ rows: PoolingWindows, _ cols: PoolingWindows) -> Rule {
        Rule { g, _ in [g.windowAverage(rows: rows, cols: cols)] }
    }

    // MARK: - Normalisation

    /// `relu?(x·scale[c] + shift[c])` → ∂x = g′·scale, ∂scale = Σ g′·x, ∂shift = Σ g′, with g′ = g
    /// masked by the output when a ReLU is fused
    static func channelAffine(_ x: Tensor, _ scale: Tensor, relu: Bool) -> Rule {
        let (axes, broadcast) = (x.channelAxes, x.channelBroadcastShape)
        let (x, scale) = (kept(x, for: scale), kept(scale, for: x))
        func rule(_ gy: Tensor, _ out: Tensor?, _ n: [Bool]) -> [Tensor?] {
            let g = out.map { gy.masked(by: $0.detached()) } ?? gy
            return [n[0] ? g * scale!.reshaped(broadcast) : nil,
                    n[1] ? (g * x!).sum(axes: axes) : nil,
                    n[2] ? g.sum(axes: axes) : nil]
        }
        return relu ? .readingOutput(rule) : Rule { g, n in rule(g, nil, n) }
    }

    /// Training-mode `relu?(batchNorm(x, γ, β))` → the fused backward kernel
    /// (`Tensor.batchNormBackward`), whose values are recorded, when the backward pass is, with
    /// `batchNormBackward(g, x, γ)` below as their derivative
    static func batchNorm(_ x: Tensor, _ weight: Tensor, _ saved: BatchNormSaved) -> Rule {
        saved.fusedReLU ? .readingOutput { g, out, n in Tensor.batchNormBackward(g, x, weight, output: out, saved, need: n) }
                        : Rule { g, n in Tensor.batchNormBackward(g, x, weight, output: nil, saved, need: n) }
    }

    /// The closed form of batch norm's backward, in differentiable ops (statistics recomputed from
    /// x, so that their dependence on x is differentiated too), with x̂ = (x − μ)·invstd:
    /// ∂x = γ·invstd·(g − mean(g) − x̂·mean(g·x̂)), ∂γ = Σ g·x̂, ∂β = Σ g. With a group, x and g are
    /// this process's slices of a data-parallel batch: the means (statistics included) are the whole
    /// batch's, through cross-replica sums, while ∂γ and ∂β are this process's shares.
    static func batchNormBackward(_ g: Tensor, _ x: Tensor, weight: Tensor, eps: Float, need: [Bool],
                                  across group: (any ReplicaGroup)? = nil) -> [Tensor?] {
        let axes = x.channelAxes
        func batchMean(_ t: Tensor) -> Tensor {
            guard let group else { return t.mean(axes: axes, keepDims: true) }
            let total = Float(t.count / t.shape[1] * group.size)
            return t.sum(axes: axes, keepDims: true).summedAcrossReplicas(group).scaled(by: 1 / total)
        }
        let centered = x - batchMean(x)
        let invstd = (batchMean(centered.square()) + eps).rsqrt()
        let xhat = centered * invstd
        var gx: Tensor? = nil
        if need[0] {
            let meanG = batchMean(g)
            let meanGX = batchMean(g * xhat)
            gx = weight.reshaped(x.channelBroadcastShape) * invstd * (g - meanG - xhat * meanGX)
        }
        return [gx, need[1] ? (g * xhat).sum(axes: axes) : nil, need[2] ? g.sum(axes: axes) : nil]
    }
}
