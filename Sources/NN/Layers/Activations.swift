import Engine

/// `max(x, 0)`.
public final class ReLU: Module, UnaryLayer {
    public override init() { super.init() }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.relu() }
}

/// Flattens every dimension after the first.
public final class Flatten: Module, UnaryLayer {
    public override init() { super.init() }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.flattened(from: 1) }
}
