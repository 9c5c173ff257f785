/// Elementwise arithmetic with NumPy broadcasting. Each op's derivative is its rule in
/// `Derivatives`, written with these same ops, so gradients of gradients come for free.
extension Tensor {
    /// Element strides of `shape` read as broadcast to `target` (0 on broadcast dimensions).
    static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let own = Shape.strides(shape)
        let lead = target.count - shape.count
        return (0..<target.count).map { i in
            i < lead ? 0 : (shape[i - lead] == 1 ? 0 : own[i - lead])
        }
    }

    /// Wraps an element-wise result laid out as `format`, recording `backward` when given.
    static func elementwiseResult(_ name: String, _ storage: TensorStorage, _ format: DNNLFormat, inputs: [Tensor],
                                  backward: BackwardRule?) -> Tensor {
        guard let backward else {
            noteTracedEngineOp(name, inputs: inputs)
            return Tensor(storage: storage, format: format)
        }
        return recorded(name, storage: storage, format: format, inputs: inputs, backward: backward)
    }

    /// The layout an element-wise op over same-shaped operands should run in: the dense oneDNN layout
    /// one of them was produced in (so chains of oneDNN ops and maps never convert), else plain.
    static func elementwiseFormat(_ operands: [Tensor]) -> DNNLFormat {
        for t in operands { if let f = t.denseNativeFormat { return f } }
        return DNNLFormat.plain(operands[0].shape)
    }

    /// For a broadcast op with a 4-D result: the dense channel-blocked layout of an operand that
    /// already has the result's shape, and its block (the op then runs in that layout).
    static func blockedBroadcastFormat(_ operands: [Tensor], _ shape: [Int]) -> (DNNLFormat, Int)? {
        guard shape.count == 4 else { return nil }
        return operands.lazy.filter { $0.shape == shape }.compactMap(\.denseChannelBlocked).first.map { ($0.format, $0.block) }
    }

    static func binary(_ name: String, _ op: ElementwiseKernels.Binary, _ a: Tensor, _ b: Tensor,
                       backward: BackwardRule?) -> Tensor {
        if a.shape == b.shape {
            let format = elementwiseFormat([a, b])
            let storage = TensorStorage(count: format.elementCount)
            ElementwiseKernels.binary(op, a.data(in: format), aStrides: [1], b.data(in: format), bStrides: [1],
                                      storage.pointer, shape: [format.elementCount])
            return elementwiseResult(name, storage, format, inputs: [a, b], backward: backward)
        }
        let shape = Shape.broadcast(a.shape, b.shape)
        if let (format, block) = blockedBroadcastFormat([a, b], shape) {
            // The full-shape operand's channel-blocked buffer is a plain [N, C/B, H, W, B] array;
            // the broadcast operand is read through matching strides of its plain values.
            let physical = channelBlockedShape(shape, block: block)
            func view(_ t: Tensor) -> (UnsafeMutablePointer<Float>, [Int]) {
                t.shape == shape ? (t.data(in: format), Shape.strides(physical)) : (t.pointer, channelBlockedStrides(t.shape, to: shape, block: block))
            }
            let (pa, sa) = view(a), (pb, sb) = view(b)
            let storage = TensorStorage(count: format.elementCount)
            ElementwiseKernels.binary(op, pa, aStrides: sa, pb, bStrides: sb, storage.pointer, shape: physical)
            return elementwiseResult(name, storage, format, inputs: [a, b], backward: backward)
        }
        let storage = TensorStorage(count: Shape.count(shape))
        ElementwiseKernels.binary(op, a.pointer, aStrides: broadcastStrides(a.shape, to: shape),
                                  b.pointer, bStrides: broadcastStrides(b.shape, to: shape), storage.pointer, shape: shape)
        return elementwiseResult(name, storage, DNNLFormat.plain(shape), inputs: [a, b], backward: backward)
    }

    static func unary(_ name: String, _ op: ElementwiseKernels.Unary, _ x: Tensor,
                      backward: BackwardRule?) -> Tensor {
        let format = elementwiseFormat([x])
        let storage = TensorStorage(count: format.elementCount)
        ElementwiseKernels.unary(op, x.data(in: format), storage.pointer, count: format.elementCount)
        return elementwiseResult(name, storage, format, inputs: [x], backward: backward)
    }
}

// MARK: - Binary operators

public func + (a: Tensor, b: Tensor) -> Tensor {
    Tensor.traced(.add, [a, b]) { Tensor.binary("add", .add, a, b, backward: Derivatives.add(a.shape, b.shape)) }
}

public func - (a: Tensor, b: Tensor) -> Tensor {
    Tensor.traced(.sub, [a, b]) { Tensor.binary("sub", .sub, a, b, backward: Derivatives.sub(a.shape, b.shape)) }
}

public func * (a: Tensor, b: Tensor) -> Tensor {
    Tensor.traced(.mul, [a, b]) { Tensor.binary("mul", .mul, a, b, backward: Derivatives.mul(a, b)) }
}

public func / (a: Tensor, b: Tensor) -> Tensor {
    Tensor.traced(.div, [a, b]) { Tensor.binary("div", .div, a, b, backward: Derivatives.div(a, b)) }
}

public prefix func - (x: Tensor) -> Tensor {
    Tensor.unary("neg", .neg, x, backward: Derivatives.neg)
}

public func + (a: Tensor, s: Float) -> Tensor { a + Tensor(scalar: s) }
public func + (s: Float, a: Tensor) -> Tensor { Tensor(scalar: s) + a }
public func - (a: Tensor, s: Float) -> Tensor { a - Tensor(scalar: s) }
public func - (s: Float, a: Tensor) -> Tensor { Tensor(scalar: s) - a }
public func * (a: Tensor, s: Float) -> Tensor { a.scaled(by: s) }
public func * (s: Float, a: Tensor) -> Tensor { a.scaled(by: s) }
public func / (a: Tensor, s: Float) -> Tensor { a.scaled(by: 1 / s) }
public func / (s: Float, a: Tensor) -> Tensor { Tensor(scalar: s) / a }

extension Tensor {
    /// `self * s + shift` in one pass.
    public func scaled(by s: Float, shift: Float = 0) -> Tensor {
        let format = Tensor.elementwiseFormat([self])
        let storage = TensorStorage(count: format.elementCount)
        ElementwiseKernels.affine(data(in: format), scale: s, shift: shift, storage.pointer, count: format.elementCount)
        return Tensor.recorded("scale", storage: storage, format: format, inputs: [self], backward: Derivatives.scale(s))
    }

    /// Elementwise maximum; the gradient goes to `self` where `self >= other` (PyTorch's `maximum`
    /// splits ties; ties are measure-zero in practice).
    public func maximum(_ other: Tensor) -> Tensor {
        Tensor.binary("maximum", .max, self, other, backward: Derivatives.maximum(self, other))
    }

    /// `self` raised to a constant power.
    public func pow(_ p: Float) -> Tensor {
        if p == 2 { return square() }
        return Tensor.binary("pow", .pow, self, Tensor(scalar: p), backward: Derivatives.pow(self, p))
    }

    /// Values clamped to `[low, high]`; the gradient passes where the value was inside.
    public func clamped(min low: Float = -.infinity, max high: Float = .infinity) -> Tensor {
        Tensor.traced(.clamp(min: low, max: high), [self]) {
            let storage = TensorStorage(count: count)
            let x = pointer, o = storage.pointer
            for i in 0..<count { o[i] = Swift.min(Swift.max(x[i], low), high) }
            return Tensor.recorded("clamp", storage: storage, shape: shape, inputs: [self], backward: Derivatives.clamp(self, low, high))
        }
    }
}

// MARK: - Unary functions

extension Tensor {
    public func exp() -> Tensor { Tensor.unary("exp", .exp, self, backward: Derivatives.exp) }
    public func log() -> Tensor { Tensor.unary("log", .log, self, backward: Derivatives.log(self)) }
    public func sqrt() -> Tensor { Tensor.unary("sqrt", .sqrt, self, backward: Derivatives.sqrt) }
    public func rsqrt() -> Tensor { Tensor.unary("rsqrt", .rsqrt, self, backward: Derivatives.rsqrt) }
    public func square() -> Tensor { Tensor.unary("square", .square, self, backward: Derivatives.square(self)) }
    public func reciprocal() -> Tensor { Tensor.unary("reciprocal", .reciprocal, self, backward: Derivatives.reciprocal) }
    public func sigmoid() -> Tensor { Tensor.unary("sigmoid", .sigmoid, self, backward: Derivatives.sigmoid) }
    public func tanh() -> Tensor { Tensor.unary("tanh", .tanh, self, backward: Derivatives.tanh) }
    public func abs() -> Tensor { Tensor.unary("abs", .abs, self, backward: Derivatives.abs(self)) }
    /// `max(x, 0)`; its derivative multiplies by the constant mask `x > 0`.
    public func relu() -> Tensor { Tensor.traced(.relu, [self]) { Tensor.unary("relu", .relu, self, backward: Derivatives.relu) } }

    /// `self` where `reference > 0`, else 0, in one pass: ReLU's backward. Linear in `self` (its
    /// derivative is the same mask); `reference` is a constant.
    public func masked(by reference: Tensor) -> Tensor {
        precondition(shape == reference.shape, "masked(by:): shapes \(shape) and \(reference.shape) differ")
        return Tensor.binary("reluBackward", .maskPositive, self, reference, backward: Derivatives.masked(reference))
    }

    /// -1, 0 or 1 per value; a constant (no gradient).
    public func sign() -> Tensor { Tensor.unary("sign", .sign, self, backward: nil) }
    /// 1 where `self > other`, else 0; a constant.
    public func greater(_ other: Tensor) -> Tensor { Tensor.binary("gt", .greater, self, other, backward: nil) }
    /// 1 where `self == other`, else 0; a constant.
    public func equal(_ other: Tensor) -> Tensor { Tensor.binary("eq", .equal, self, other, backward: nil) }
    /// 1 where `low ≤ self ≤ high`, else 0 (NaN: 0); a constant.
    public func isWithin(_ low: Float, _ high: Float) -> Tensor {
        let x = pointer
        return Tensor.make(shape) { p, n in for i in 0..<n { p[i] = (x[i] >= low && x[i] <= high) ? 1 : 0 } }
    }
}
