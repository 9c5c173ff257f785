/// Reshaping, reordering, joining and indexing. Every result is contiguous.
extension Tensor {
    /// The same values with a new shape (one dimension may be -1). Shares storage.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let i = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "reshape: cannot view \(shape) as \(newShape)")
            target[i] = count / known
        }
        precondition(Shape.count(target) == count, "reshape: cannot view \(shape) (\(count) values) as \(newShape)")
        if target == shape { return self }
        return Tensor.traced(.reshape(shape: target), [self]) {
            Tensor.recorded("reshape", storage: storage, shape: target, inputs: [self], backward: Derivatives.reshape(shape))
        }
    }

    /// Flattens all dimensions from `startAxis` on into one.
    public func flattened(from startAxis: Int = 1) -> Tensor {
        let a = Shape.axis(startAxis, rank: rank)
        return reshaped(Array(shape[..<a]) + [shape[a...].reduce(1, *)])
    }

    /// Inserts a dimension of size 1 at `axis`.
    public func unsqueezed(_ axis: Int) -> Tensor {
        var s = shape
        s.insert(1, at: axis < 0 ? axis + rank + 1 : axis)
        return reshaped(s)
    }

    /// Reorders dimensions: result dimension i is input dimension `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permute: \(order) is not a permutation of 0..<\(rank)")
        if order == Array(0..<rank) { return self }
        return Tensor.traced(.permute(order: order), [self]) { permutedCopy(order) }
    }

    private func permutedCopy(_ order: [Int]) -> Tensor {
        let newShape = order.map { shape[$0] }
        let inStrides = Shape.strides(shape)
        let storage = TensorStorage(count: count)
        let srcStrides = order.map { inStrides[$0] }
        let zero = Tensor.zeros([])
        ElementwiseKernels.binary(.add, pointer, aStrides: srcStrides, zero.pointer,
                                  bStrides: [Int](repeating: 0, count: rank), storage.pointer, shape: newShape)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return Tensor.recorded("permute", storage: storage, shape: newShape, inputs: [self], backward: Derivatives.permute(inverse: inverse))
    }

    /// Swaps two dimensions (the last two by default).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(Shape.axis(a, rank: rank), Shape.axis(b, rank: rank))
        return permuted(order)
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concat(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concat: no tensors given")
        let rank = parts[0].rank
        let a = Shape.axis(axis, rank: rank)
        for p in parts {
            precondition(p.rank == rank && (0..<rank).allSatisfy { $0 == a || p.shape[$0] == parts[0].shape[$0] },
                         "concat: shape \(p.shape) does not match \(parts[0].shape) outside axis \(a)")
        }
        return traced(.concat(axis: a), parts) { joined(parts, axis: a) }
    }

    private static func joined(_ parts: [Tensor], axis a: Int) -> Tensor {
        var shape = parts[0].shape
        shape[a] = parts.reduce(0) { $0 + $1.shape[a] }
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        let storage = TensorStorage(count: Shape.count(shape))
        var offset = 0
        let rowOut = shape[a] * inner
        for p in parts {
            let row = p.shape[a] * inner
            for o in 0..<outer {
                (storage.pointer + o * rowOut + offset).update(from: p.pointer + o * row, count: row)
            }
            offset += row
        }
        return recorded("concat", storage: storage, shape: shape, inputs: parts,
                        backward: Derivatives.concat(axis: a, sizes: parts.map { $0.shape[a] }))
    }

    /// Stacks equal-shaped tensors along a new `axis`.
    public static func stack(_ parts: [Tensor], axis: Int = 0) -> Tensor {
        concat(parts.map { $0.unsqueezed(axis) }, axis: axis)
    }

    /// The sub-range `range` of dimension `axis`.
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let a = Shape.axis(axis, rank: rank)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a], "slice: \(range) outside 0..<\(shape[a]) on axis \(a)")
        if range.count == shape[a] { return self }
        return Tensor.traced(.slice(axis: a, start: range.lowerBound, end: range.upperBound), [self]) { sliceCopy(axis: a, range) }
    }

    private func sliceCopy(axis a: Int, _ range: Range<Int>) -> Tensor {
        var newShape = shape
        newShape[a] = range.count
        let (outer, n, inner) = split(around: a)
        let storage = TensorStorage(count: Shape.count(newShape))
        for o in 0..<outer {
            (storage.pointer + o * range.count * inner).update(from: pointer + (o * n + range.lowerBound) * inner, count: range.count * inner)
        }
        return Tensor.recorded("slice", storage: storage, shape: newShape, inputs: [self],
                               backward: Derivatives.slice(axis: a, range, extent: shape[a]))
    }

    /// Zero padding of one dimension (the derivative of `slice`).
    public func padded(axis: Int, before: Int, after: Int) -> Tensor {
        let a = Shape.axis(axis, rank: rank)
        if before == 0 && after == 0 { return self }
        var newShape = shape
        newShape[a] += before + after
        let (outer, n, inner) = split(around: a)
        let total = newShape[a]
        let storage = TensorStorage(count: Shape.count(newShape))
        storage.pointer.initialize(repeating: 0, count: storage.count)
        for o in 0..<outer {
            (storage.pointer + (o * total + before) * inner).update(from: pointer + o * n * inner, count: n * inner)
        }
        return Tensor.recorded("pad", storage: storage, shape: newShape, inputs: [self], backward: Derivatives.pad(axis: a, before: before, extent: n))
    }

    /// Zero padding of the two spatial dimensions of an NCHW tensor.
    public func padded2d(top: Int, bottom: Int, left: Int, right: Int) -> Tensor {
        padded(axis: 2, before: top, after: bottom).padded(axis: 3, before: left, after: right)
    }

    /// Rows `indices` of dimension `axis` (repeats allowed).
    public func indexSelect(axis: Int, _ indices: [Int]) -> Tensor {
        let a = Shape.axis(axis, rank: rank)
        let (outer, n, inner) = split(around: a)
        var newShape = shape
        newShape[a] = indices.count
        let storage = TensorStorage(count: Shape.count(newShape))
        for o in 0..<outer {
            for (j, idx) in indices.enumerated() {
                precondition(idx >= 0 && idx < n, "indexSelect: index \(idx) outside 0..<\(n)")
                (storage.pointer + (o * indices.count + j) * inner).update(from: pointer + (o * n + idx) * inner, count: inner)
            }
        }
        return Tensor.recorded("indexSelect", storage: storage, shape: newShape, inputs: [self],
                               backward: Derivatives.indexSelect(axis: a, indices, extent: shape[a]))
    }

    /// Adds slices of `self` (along `axis`) into a zero tensor of extent `size` at `indices` (the
    /// derivative of `indexSelect`).
    public func indexAdd(axis: Int, _ indices: [Int], size: Int) -> Tensor {
        let a = Shape.axis(axis, rank: rank)
        let (outer, m, inner) = split(around: a)
        precondition(m == indices.count, "indexAdd: \(indices.count) indices for extent \(m)")
        var newShape = shape
        newShape[a] = size
        let storage = TensorStorage(count: Shape.count(newShape))
        storage.pointer.initialize(repeating: 0, count: storage.count)
        for o in 0..<outer {
            for (j, idx) in indices.enumerated() {
                precondition(idx >= 0 && idx < size, "indexAdd: index \(idx) outside 0..<\(size)")
                let dst = storage.pointer + (o * size + idx) * inner, src = pointer + (o * m + j) * inner
                for i in 0..<inner { dst[i] += src[i] }
            }
        }
        return Tensor.recorded("indexAdd", storage: storage, shape: newShape, inputs: [self], backward: Derivatives.indexAdd(axis: a, indices))
    }

    /// PyTorch's `gather`: `out[..., j, ...] = self[..., indices[..., j, ...], ...]` along `axis`, with
    /// `indexShape` equal to `self.shape` except on `axis`.
    public func gather(axis: Int, indices: [Int], indexShape: [Int]) -> Tensor {
        let a = Shape.axis(axis, rank: rank)
        precondition(indices.count == Shape.count(indexShape), "gather: \(indices.count) indices for shape \(indexShape)")
        let (outer, n, inner) = split(around: a)
        let m = indexShape[a]
        let storage = TensorStorage(count: indices.count)
        for o in 0..<outer { for j in 0..<m { for i in 0..<inner {
            let idx = indices[(o * m + j) * inner + i]
            precondition(idx >= 0 && idx < n, "gather: index \(idx) outside 0..<\(n)")
            storage.pointer[(o * m + j) * inner + i] = pointer[(o * n + idx) * inner + i]
        } } }
        return Tensor.recorded("gather", storage: storage, shape: indexShape, inputs: [self],
                               backward: Derivatives.gather(axis: a, indices: indices, shape: shape))
    }

    /// PyTorch's `scatter_add` into zeros of `shape` (the derivative of `gather`).
    public func scatterAdd(axis: Int, indices: [Int], shape target: [Int]) -> Tensor {
        let a = Shape.axis(axis, rank: rank)
        precondition(indices.count == count, "scatterAdd: \(indices.count) indices for \(count) values")
        let (outer, m, inner) = split(around: a)
        let n = target[a]
        let storage = TensorStorage(count: Shape.count(target))
        storage.pointer.initialize(repeating: 0, count: storage.count)
        for o in 0..<outer { for j in 0..<m { for i in 0..<inner {
            let idx = indices[(o * m + j) * inner + i]
            precondition(idx >= 0 && idx < n, "scatterAdd: index \(idx) outside 0..<\(n)")
            storage.pointer[(o * n + idx) * inner + i] += pointer[(o * m + j) * inner + i]
        } } }
        return Tensor.recorded("scatterAdd", storage: storage, shape: target, inputs: [self],
                               backward: Derivatives.scatterAdd(axis: a, indices: indices, shape: shape))
    }
}
