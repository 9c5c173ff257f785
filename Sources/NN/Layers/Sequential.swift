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

    public func callAsFunction(_ x: Tensor) -> Tensor { layers.reduce(x) { $1($0) } }
}
