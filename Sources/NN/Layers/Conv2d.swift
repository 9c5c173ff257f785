import Engine

/// PyTorch's `nn.Conv2d` (zero padding).
public final class Conv2d: Module, UnaryLayer {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor?
    public let stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2d: groups \(groups) must divide \(inChannels) and \(outChannels)")
        let shape = [outChannels, inChannels / groups, kernelSize, kernelSize]
        weight = Initialization.defaultWeight(shape)
        self.bias = bias ? Initialization.defaultBias(outChannels, fanIn: Initialization.fans(shape).fanIn) : nil
        self.stride = (stride, stride); self.padding = (padding, padding); self.dilation = (dilation, dilation)
        self.groups = groups
        super.init()
    }

    /// Batch norm folded into this convolution, with the tensors it was computed from.
    private final class Folded {
        let sources: [Tensor?]
        let weight: Tensor, bias: Tensor
        init(sources: [Tensor?], weight: Tensor, bias: Tensor) { self.sources = sources; self.weight = weight; self.bias = bias }
    }
    private var folded: Folded?

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    /// `bn(self(x), fusedReLU: relu)`. In evaluation mode with recording off (inference of a frozen
    /// network), `bn` is folded into this convolution's weight and bias (w·γ/σ, (b − μ)·γ/σ + β:
    /// the same function, rounded differently) and the ReLU runs in the convolution's own pass; the
    /// folded weights are kept, in oneDNN's layout only, until either module's tensors change.
    public func callAsFunction(_ x: Tensor, normalizedBy bn: BatchNorm2d, relu: Bool = false) -> Tensor {
        guard !bn.isTraining && !GradMode.isEnabled else { return bn(self(x), fusedReLU: relu) }
        let sources = [weight, bias, bn.weight, bn.bias, bn.runningMean, bn.runningVar]
        let f: Folded
        if let cached = folded, zip(cached.sources, sources).allSatisfy({ $0 === $1 }) {
            f = cached
        } else {
            let scale = bn.weight * (bn.runningVar + bn.eps).rsqrt()
            let shift = bias.map { ($0 - bn.runningMean) * scale } ?? -(bn.runningMean * scale)
            f = Folded(sources: sources, weight: weight * scale.reshaped([scale.count, 1, 1, 1]), bias: shift + bn.bias)
            folded = f
        }
        let y = x.conv2d(f.weight, bias: f.bias, stride: stride, padding: padding, dilation: dilation, groups: groups, fusedReLU: relu)
        f.weight.releasePlainCopy()
        return y
    }
}
