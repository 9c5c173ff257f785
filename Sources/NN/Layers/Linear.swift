import Engine

/// PyTorch's `nn.Linear`.
public final class Linear: Module, UnaryLayer {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        weight = Initialization.defaultWeight([outFeatures, inFeatures])
        self.bias = bias ? Initialization.defaultBias(outFeatures, fanIn: inFeatures) : nil
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.linear(weight, bias: bias) }
}
