import Foundation
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

    /// Batch norm folded into this convolution, with the tensors it was computed from: the folded
    /// weight for oneDNN's direct kernel, or the folded filters transformed for Winograd.
    private final class Folded {
        let sources: [Tensor?]
        let kernel: Kernel, bias: Tensor
        enum Kernel { case direct(Tensor), winograd(WinogradFilters) }
        init(sources: [Tensor?], kernel: Kernel, bias: Tensor) { self.sources = sources; self.kernel = kernel; self.bias = bias }
        /// The Winograd output tile, nil for the direct kernel.
        var outputTile: Int? { if case .winograd(let filters) = kernel { return filters.outputTile } else { return nil } }
    }

    private var folded: Folded?

    public override func releaseInferenceCaches() {
        folded = nil
        super.releaseInferenceCaches()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    /// `bn(self(x), fusedReLU: relu)`. In evaluation mode with recording off (inference of a frozen
    /// network), `bn` is folded into this convolution's weight and bias (w·γ/σ, (b − μ)·γ/σ + β:
    /// the same function, rounded differently) and the ReLU runs in the convolution's own pass; the
    /// folded weights are kept, in oneDNN's layout only (or, for convolutions Winograd computes,
    /// transformed), until either module's tensors change. While a `GraphTrace` records (an
    /// export), it computes the plain convolution and batch norm, which the trace sees as such.
    public func callAsFunction(_ x: Tensor, normalizedBy bn: BatchNorm2d, relu: Bool = false) -> Tensor {
        guard !bn.isTraining && !GradMode.isEnabled && !GraphTrace.isRecording else { return bn(self(x), fusedReLU: relu) }
        let sources = [weight, bias, bn.weight, bn.bias, bn.runningMean, bn.runningVar]
        let f: Folded
        let tile = x.rank == 4 && x.shape[1] == weight.shape[1] * groups ? WinogradPolicy.inferenceOutputTile(
            ConvGeometry(batch: x.shape[0], inChannels: x.shape[1], height: x.shape[2], width: x.shape[3], outChannels: weight.shape[0],
                         kernel: (weight.shape[2], weight.shape[3]), stride: stride, padding: padding, dilation: dilation, groups: groups)) : nil
        if let cached = folded, cached.outputTile == tile, zip(cached.sources, sources).allSatisfy({ $0 === $1 }) {
            f = cached
        } else {
            let scale = bn.weight * (bn.runningVar + bn.eps).rsqrt()
            let shift = bias.map { ($0 - bn.runningMean) * scale } ?? -(bn.runningMean * scale)
            let w = weight * scale.reshaped([scale.count, 1, 1, 1])
            f = Folded(sources: sources, kernel: tile.map { .winograd(WinogradFilters(w, outputTile: $0)) } ?? .direct(w), bias: shift + bn.bias)
            folded = f
        }
        switch f.kernel {
        case .winograd(let filters):
            return x.winogradConvolution(filters, bias: f.bias, relu: relu)
        case .direct(let w):
            let y = x.conv2d(w, bias: f.bias, stride: stride, padding: padding, dilation: dilation, groups: groups, fusedReLU: relu)
            w.releasePlainCopy()
            return y
        }
    }
}
