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

    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.conv2d(weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}
