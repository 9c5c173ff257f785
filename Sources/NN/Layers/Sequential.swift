import Engine

/// Layers applied in order; state-dict names are the indices (`0.weight`, `1.running_mean`), as in
/// PyTorch's `nn.Sequential`.
public final class Sequential: Module, UnaryLayer {
    public let layers: [any UnaryLayer]
    public init(_ layers: [any UnaryLayer]) { self.layers = layers; super.init() }
    public convenience init(_ layers: any UnaryLayer...) { self.init(layers) }

    public override var namedChildren: [(String, Module)] {
        layers.enumerated().map { ("\($0.offset)", $0.element as Module) }
    }

    /// The layers in order; a convolution followed by batch norm (and a ReLU) runs as one
    /// `Conv2d.callAsFunction(_:normalizedBy:relu:)`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x, i = 0
        while i < layers.count {
            if let conv = layers[i] as? Conv2d, i + 1 < layers.count, let bn = layers[i + 1] as? BatchNorm2d {
                let relu = i + 2 < layers.count && layers[i + 2] is ReLU
                y = conv(y, normalizedBy: bn, relu: relu)
                i += relu ? 3 : 2
            } else {
                y = layers[i](y)
                i += 1
            }
        }
        return y
    }
}
