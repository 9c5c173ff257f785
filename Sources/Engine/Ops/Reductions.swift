/// Reductions. `sum(toShape:)` and `expanded(to:)` are each other's derivative; every other
/// reduction is written in terms of them.
extension Tensor {
    /// Sums over the dimensions where `shape` is broadcast to `self.shape` (the inverse of
    /// broadcasting): the result has exactly `shape`.
    public func sum(toShape target: [Int]) -> Tensor {
        if target == shape { return self }
        let outStrides = Tensor.broadcastStrides(target, to: shape)
        let storage = TensorStorage(count: Shape.count(target))
        ElementwiseKernels.sumInto(pointer, shape: shape, storage.pointer, outStrides: outStrides, outCount: storage.count)
        return Tensor.recorded("sumTo", storage: storage, shape: target, inputs: [self]) { [shape] g, _, _ in
            [g.expanded(to: shape)]
        }
    }

    /// Broadcasts to `target` (materialised).
    public func expanded(to target: [Int]) -> Tensor {
        if target == shape { return self }
        let storage = TensorStorage(count: Shape.count(target))
        let zeros = Tensor.zeros([])
        ElementwiseKernels.binary(.add, pointer, aStrides: Tensor.broadcastStrides(shape, to: target),
                                  zeros.pointer, bStrides: [Int](repeating: 0, count: target.count), storage.pointer, shape: target)
        return Tensor.recorded("expand", storage: storage, shape: target, inputs: [self]) { [shape] g, _, _ in
            [g.sum(toShape: shape)]
        }
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
        return sum(axes: all, keepDims: keepDims) / Float(n)
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
