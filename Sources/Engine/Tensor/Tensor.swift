/// An n-dimensional array of `Float32` in contiguous row-major (NCHW) order, and a node of the
/// autodiff graph.
///
/// Tensors are immutable values with reference identity: an op never changes its inputs, it makes a
/// new tensor. A tensor produced by an op while recording is on (see `GradMode`) from inputs that
/// require gradients carries a `GradFunction`; a leaf carries `requiresGrad`.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    /// True for a leaf whose gradient may be requested, or for any tensor recorded by an op.
    public let requiresGrad: Bool
    /// How this tensor was computed, when it was recorded; nil for leaves and constants.
    package let gradFunction: GradFunction?

    /// The values in plain row-major order; nil until first needed when an op produced them in a
    /// oneDNN layout.
    private var plain: TensorStorage?
    /// The same values in other physical layouts (oneDNN's blocked formats), kept so that
    /// consecutive oneDNN ops and element-wise maps skip conversions.
    private(set) var layouts: [(format: DNNLFormat, storage: TensorStorage)] = []

    /// Wraps plain storage as a leaf.
    package init(storage: TensorStorage, shape: [Int], requiresGrad: Bool = false) {
        precondition(Shape.count(shape) == storage.count,
                     "Tensor: shape \(shape) holds \(Shape.count(shape)) values but storage has \(storage.count)")
        self.shape = shape
        self.plain = storage
        self.requiresGrad = requiresGrad
        self.gradFunction = nil
    }

    /// Wraps values held in a oneDNN layout.
    init(storage: TensorStorage, format: DNNLFormat, gradFunction: GradFunction? = nil) {
        shape = format.shape
        if format.isPlain { plain = storage } else { layouts = [(format, storage)] }
        requiresGrad = gradFunction != nil
        self.gradFunction = gradFunction
    }

    /// A new tensor node sharing every representation of `other`'s values.
    init(sharing other: Tensor, requiresGrad: Bool, gradFunction: GradFunction?) {
        shape = other.shape
        plain = other.plain
        layouts = other.layouts
        self.requiresGrad = requiresGrad || gradFunction != nil
        self.gradFunction = gradFunction
    }

    init(storage: TensorStorage, shape: [Int], gradFunction: GradFunction) {
        self.shape = shape
        self.plain = storage
        self.requiresGrad = true
        self.gradFunction = gradFunction
    }

    /// The values in plain row-major order (converted from a oneDNN layout on first use).
    package var storage: TensorStorage {
        if let plain { return plain }
        let (format, source) = layouts[0]
        let s = TensorStorage(count: Shape.count(shape))
        Reorder.run(from: format, source.pointer, to: DNNLFormat.plain(shape), s.pointer)
        plain = s
        // A layout the per-channel kernels cannot use was made by a convolution for its output;
        // once something needed the plain values (batch norm does), it is not kept as a second copy
        // (a later convolution that wants it converts again). ShuffleV1's meta step kept 0.4 GB
        // of such copies at its peak.
        if format.isUnusableChannelBlocking { layouts.removeAll() }
        return s
    }

    /// Whether a layout the per-channel kernels cannot run in is held (see `storage`).
    package var holdsUnusableChannelBlocking: Bool { layouts.contains { $0.format.isUnusableChannelBlocking } }

    /// True when the plain row-major values exist already (no conversion needed).
    public var hasPlainStorage: Bool { plain != nil }
    /// Whether the values are held only in a dense channel-blocked oneDNN layout (NCHW8c or
    /// NCHW16c: which one, and whether a convolution picks one at all, depends on the CPU).
    public var isChannelBlocked: Bool { denseChannelBlocked != nil }

    /// The values laid out as `format`, converting once and keeping the result.
    func data(in format: DNNLFormat) -> UnsafeMutablePointer<Float> {
        if format.isPlain { return storage.pointer }
        if let hit = layouts.first(where: { $0.format.isEqual(format) }) { return hit.storage.pointer }
        let s = TensorStorage(count: format.elementCount)
        if plain == nil, let (f, source) = layouts.first {
            Reorder.run(from: f, source.pointer, to: format, s.pointer)
        } else {
            // Plain memory is the same for any dimension split (a grouped weight's 5-D view).
            Reorder.run(from: DNNLFormat.plain(format.shape), storage.pointer, to: format, s.pointer)
        }
        layouts.append((format, s))
        return s.pointer
    }

    /// The values laid out as `format` for one call: as `data(in:)`, except that a layout the
    /// per-channel kernels cannot use (see `storage`) is not made from the plain values and kept
    /// beside them, but converted into `keepAlive`, which the caller holds for the call.
    func callData(in format: DNNLFormat, keepAlive: inout [TensorStorage]) -> UnsafeMutablePointer<Float> {
        guard format.isUnusableChannelBlocking, plain != nil, !layouts.contains(where: { $0.format.isEqual(format) }) else {
            return data(in: format)
        }
        let s = TensorStorage(count: format.elementCount)
        Reorder.run(from: DNNLFormat.plain(format.shape), storage.pointer, to: format, s.pointer)
        keepAlive.append(s)
        return s.pointer
    }

    /// Drops every representation of the values but the one in `format` (which must be held): for
    /// a tensor kept for readers of that layout alone, whose other copies only cost memory.
    func keepOnly(_ format: DNNLFormat) {
        if format.isPlain {
            precondition(plain != nil, "keepOnly: the plain values are not held")
            layouts.removeAll()
        } else {
            guard let kept = layouts.first(where: { $0.format.isEqual(format) }) else { preconditionFailure("keepOnly: the layout is not held") }
            plain = nil
            layouts = [kept]
        }
    }

    /// Frees the plain row-major copy when a oneDNN layout holds the same values (it is rebuilt on
    /// demand): for long-lived tensors that only oneDNN ops read, such as folded inference weights.
    public func releasePlainCopy() { if !layouts.isEmpty { plain = nil } }

    /// The layout this tensor's values were produced in when that is a dense oneDNN layout (and no
    /// plain copy exists yet): element-wise maps then run in that layout directly.
    var denseNativeFormat: DNNLFormat? {
        guard plain == nil, let first = layouts.first, first.format.isDense else { return nil }
        return first.format
    }

    /// `denseNativeFormat` when it is a channel-blocked layout (NCHW{B}c, B > 1), with its block.
    var denseChannelBlocked: (format: DNNLFormat, block: Int)? {
        guard let f = denseNativeFormat, let block = f.channelBlock, block > 1 else { return nil }
        return (f, block)
    }

    /// Element strides over the plain `[N, C/B, H, W, B]` view of a 4-D `target` laid out in channel
    /// blocks of `block`, for a plain tensor of `shape` broadcast to `target`.
    static func channelBlockedStrides(_ shape: [Int], to target: [Int], block: Int) -> [Int] {
        let s = broadcastStrides(shape, to: target)
        return [s[0], s[1] * block, s[2], s[3], s[1]]
    }

    /// The plain `[N, C/B, H, W, B]` shape of a 4-D `shape` in channel blocks of `block`.
    static func channelBlockedShape(_ shape: [Int], block: Int) -> [Int] {
        [shape[0], shape[1] / block, shape[2], shape[3], block]
    }

    public var count: Int { Shape.count(shape) }
    public var rank: Int { shape.count }
    package var pointer: UnsafeMutablePointer<Float> { storage.pointer }

    /// The values in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item: tensor of shape \(shape) has \(count) values, expected 1")
        return storage.pointer[0]
    }

    /// The same values, cut from the graph.
    public func detached() -> Tensor { Tensor(sharing: self, requiresGrad: false, gradFunction: nil) }

    /// The same values as a leaf that requires gradients (PyTorch's `detach().requires_grad_()`).
    public func requiringGrad() -> Tensor { Tensor(sharing: self, requiresGrad: true, gradFunction: nil) }
}

// MARK: - Creation

extension Tensor {
    /// A tensor of the given shape whose values are written by `fill`.
    package static func make(_ shape: [Int], _ fill: (UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let storage = TensorStorage(count: Shape.count(shape))
        fill(storage.pointer, storage.count)
        return Tensor(storage: storage, shape: shape)
    }

    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(values.count == Shape.count(shape),
                     "Tensor: \(values.count) values given for shape \(shape) (\(Shape.count(shape)) expected)")
        let storage = TensorStorage(count: values.count)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: values.count) }
        self.init(storage: storage, shape: shape, requiresGrad: requiresGrad)
    }

    /// A scalar (rank-0) tensor.
    public convenience init(scalar: Float) { self.init([scalar], shape: []) }

    public static func full(_ shape: [Int], _ value: Float) -> Tensor {
        make(shape) { p, n in p.initialize(repeating: value, count: n) }
    }
    public static func zeros(_ shape: [Int]) -> Tensor { full(shape, 0) }
    public static func ones(_ shape: [Int]) -> Tensor { full(shape, 1) }

    /// Values drawn from N(mean, std²).
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                                    generator: inout RandomGenerator) -> Tensor {
        make(shape) { p, n in for i in 0..<n { p[i] = mean + std * generator.nextNormal() } }
    }

    /// Values drawn uniformly from [low, high).
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                                     generator: inout RandomGenerator) -> Tensor {
        make(shape) { p, n in for i in 0..<n { p[i] = low + (high - low) * generator.nextUniform() } }
    }

    /// `[0, 1, …, n-1]`.
    public static func arange(_ n: Int) -> Tensor { make([n]) { p, _ in for i in 0..<n { p[i] = Float(i) } } }

    /// Rows of the identity indexed by `labels`: shape `[labels.count, classes]`.
    public static func oneHot(_ labels: [Int], classes: Int) -> Tensor {
        make([labels.count, classes]) { p, n in
            p.initialize(repeating: 0, count: n)
            for (i, y) in labels.enumerated() {
                precondition(y >= 0 && y < classes, "oneHot: label \(y) at index \(i) is outside 0..<\(classes)")
                p[i * classes + y] = 1
            }
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(count > 8 ? ", …" : "")]\(requiresGrad ? ", requiresGrad" : ""))"
    }
}
