/// Reductions. `sum(toShape:)` and `expanded(to:)` are each other's derivative; every other
/// reduction is written in terms of them.
extension Tensor {
    /// Sums over the dimensions where `shape` is broadcast to `self.shape` (the inverse of
    /// broadcasting): the result has exactly `shape`.
    public func sum(toShape target: [Int]) -> Tensor {
        if target == shape { return self }
        let storage = TensorStorage(count: Shape.count(target))
        if let f = denseNativeFormat, Shape.count(target) == 1 {
            // A total: the same values in another order.
            ElementwiseKernels.sumInto(data(in: f), shape: [f.elementCount], storage.pointer, outStrides: [0], outCount: 1)
        } else if rank == 4, let (f, block) = denseChannelBlocked,
                  Tensor.broadcastStrides(target, to: shape) == Tensor.broadcastStrides([1, shape[1], 1, 1], to: shape) {
            // Per-channel sums, in the channel-blocked layout.
            let sums = UnsafeMutablePointer<Double>.allocate(capacity: shape[1])
            defer { sums.deallocate() }
            NormalizationKernels.channelReduce(data(in: f), .sum, ChannelLayout(n: shape[0], c: shape[1], hw: shape[2] * shape[3], block: block), first: sums)
            for c in 0..<shape[1] { storage.pointer[c] = Float(sums[c]) }
        } else {
            ElementwiseKernels.sumInto(pointer, shape: shape, storage.pointer, outStrides: Tensor.broadcastStrides(target, to: shape), outCount: storage.count)
        }
        return Tensor.recorded("sumTo", storage: storage, shape: target, inputs: [self],
                               backward: Derivatives.sumTo(shape, layout: denseNativeFormat))
    }

    /// Broadcasts to `target` (materialised), laid out as `layout` when that is a channel-blocked
    /// layout of `target` (the layout of the tensor whose sum this expansion differentiates), else
    /// plain.
    public func expanded(to target: [Int]) -> Tensor { expanded(to: target, layout: nil) }

    /// `expanded(to:)` with its result laid out as `layout` (a channel-blocked format) when given.
    package func expanded(to target: [Int], layout: DNNLFormat?) -> Tensor {
        if target == shape { return self }
        let zeros = Tensor.zeros([])
        if let layout, layout.shape == target, let block = layout.channelBlock, block > 1 {
            let storage = TensorStorage(count: layout.elementCount)
            ElementwiseKernels.binary(.add, pointer, aStrides: Tensor.channelBlockedStrides(shape, to: target, block: block), zeros.pointer,
                                      bStrides: [0, 0, 0, 0, 0], storage.pointer, shape: Tensor.channelBlockedShape(target, block: block))
            return Tensor.recorded("expand", storage: storage, format: layout, inputs: [self], backward: Derivatives.expand(shape))
        }
        let storage = TensorStorage(count: Shape.count(target))
        ElementwiseKernels.binary(.add, pointer, aStrides: Tensor.broadcastStrides(shape, to: target),
                                  zeros.pointer, bStrides: [Int](repeating: 0, count: target.count), storage.pointer, shape: target)
        return Tensor.recorded("expand", storage: storage, shape: target, inputs: [self], backward: Derivatives.expand(shape))
    }

    func reducedShape(_ axes: [Int]) -> [Int] {
        let set = Set(axes.map { Shape.axis($0, rank: rank) })
        return shape.enumerated().map { set.contains($0.offset) ? 1 : $0.element }
    }

    /// Sum over `axes` (all when empty), keeping reduced dimensions as size 1 when `keepDims`.
    public func sum(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let all = axes.isEmpty ? Array(0..<rank) : axes
        let kept = reducedShape(all)
        let s = sum(toShape: kept)
        return keepDims ? s : s.reshaped(dropping(all))
    }

    /// Mean over `axes` (all when empty).
    public func mean(axes: [Int] = [], keepDims: Bool = false) -> Tensor {
        let all = axes.isEmpty ? Array(0..<rank) : axes
        let n = all.reduce(1) { $0 * shape[Shape.axis($1, rank: rank)] }
        return Tensor.traced(.mean(axes: all.map { Shape.axis($0, rank: rank) }, keepDims: keepDims), [self]) {
            sum(axes: all, keepDims: keepDims) / Float(n)
        }
    }

    /// Population variance (divides by n, as batch norm does) over `axes`.
    public func variance(axes: [Int] = [], keepDims: Bool = false, unbiased: Bool = false) -> Tensor {
        let all = axes.isEmpty ? Array(0..<rank) : axes
        let n = all.reduce(1) { $0 * shape[Shape.axis($1, rank: rank)] }
        let centered = self - mean(axes: all, keepDims: true)
        let ss = centered.square().sum(axes: all, keepDims: keepDims)
        return ss / Float(unbiased ? n - 1 : n)
    }

    func dropping(_ axes: [Int]) -> [Int] {
        let set = Set(axes.map { Shape.axis($0, rank: rank) })
        return shape.enumerated().filter { !set.contains($0.offset) }.map(\.element)
    }

    /// (outer, n, inner) view of `self` around `axis`.
    func split(around axis: Int) -> (outer: Int, n: Int, inner: Int) {
        let a = Shape.axis(axis, rank: rank)
        return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
    }

    /// Maximum along `axis`; the gradient flows to the (first) arg-max.
    public func max(axis: Int, keepDims: Bool = false) -> Tensor {
        let idx = argmax(axis: axis)
        let a = Shape.axis(axis, rank: rank)
        return gather(axis: a, indices: idx, indexShape: reducedShape([a]))
            .reshaped(keepDims ? reducedShape([a]) : dropping([a]))
    }

    /// Indices of the maximum along `axis`, in row-major order of the remaining dimensions.
    public func argmax(axis: Int) -> [Int] {
        let (outer, n, inner) = split(around: axis)
        var result = [Int](repeating: 0, count: outer * inner)
        let p = pointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                var bestValue = p[o * n * inner + i]
                for k in 1..<Swift.max(n, 1) {
                    let v = p[(o * n + k) * inner + i]
                    if v > bestValue || (bestValue.isNaN && !v.isNaN) { best = k; bestValue = v }
                }
                result[o * inner + i] = best
            }
        }
        return result
    }
}
