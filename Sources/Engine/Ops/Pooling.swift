/// Max and average pooling over NCHW tensors. Average pooling and its backward are each other's
/// adjoint; max pooling's backward is a scatter by the saved indices, whose derivative is a gather.
extension Tensor {
    /// PyTorch's `F.max_pool2d` (floor mode, dilation 1). Runs in the input's channel-blocked
    /// layout when it has one (the output and both adjoints keep it).
    public func maxPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
        precondition(rank == 4, "maxPool2d: input must be NCHW, got \(shape)")
        let s = stride ?? kernel
        return Tensor.traced(.maxPool2d(kernel: [kernel.0, kernel.1], stride: [s.0, s.1], padding: [padding.0, padding.1]), [self]) {
            maxPooled(kernel: kernel, stride: s, padding: padding)
        }
    }

    private func maxPooled(kernel: (Int, Int), stride s: (Int, Int), padding: (Int, Int)) -> Tensor {
        let rows = PoolingWindows.strided(input: shape[2], kernel: kernel.0, stride: s.0, padding: padding.0)
        let cols = PoolingWindows.strided(input: shape[3], kernel: kernel.1, stride: s.1, padding: padding.1)
        let p = MaxPoolPlan(input: self, outShape: [shape[0], shape[1], rows.count, cols.count])
        let storage = TensorStorage(count: p.outFormat.elementCount)
        let indices = PoolIndices(count: storage.count)
        PoolingKernels.maxForward(data(in: p.inFormat), planes: p.planes, h: shape[2], w: shape[3], lanes: p.lanes, rows: rows, cols: cols,
                                  storage.pointer, indices: indices.pointer)
        return Tensor.recorded("maxPool2d", storage: storage, format: p.outFormat, inputs: [self], backward: Derivatives.maxPool2d(indices, p))
    }

    static func indexScatter(_ g: Tensor, _ indices: PoolIndices, _ p: MaxPoolPlan) -> Tensor {
        let storage = TensorStorage(count: p.inFormat.elementCount)
        PoolingKernels.scatter(g.data(in: p.outFormat), planes: p.planes, outPerPlane: p.outPerPlane, inPerPlane: p.inPerPlane, lanes: p.lanes,
                               indices: indices.pointer, storage.pointer)
        return recorded("maxPoolBackward", storage: storage, format: p.inFormat, inputs: [g], backward: Derivatives.maxPoolBackward(indices, p))
    }

    static func indexGather(_ x: Tensor, _ indices: PoolIndices, _ p: MaxPoolPlan) -> Tensor {
        let storage = TensorStorage(count: p.outFormat.elementCount)
        PoolingKernels.gather(x.data(in: p.inFormat), planes: p.planes, outPerPlane: p.outPerPlane, inPerPlane: p.inPerPlane, lanes: p.lanes,
                              indices: indices.pointer, storage.pointer)
        return recorded("maxPoolGather", storage: storage, format: p.outFormat, inputs: [x], backward: Derivatives.maxPoolGather(indices, p))
    }

    /// PyTorch's `F.avg_pool2d` (floor mode, `count_include_pad=True`).
    public func avgPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Tensor {
        precondition(rank == 4, "avgPool2d: input must be NCHW, got \(shape)")
        let s = stride ?? kernel
        return Tensor.traced(.avgPool2d(kernel: [kernel.0, kernel.1], stride: [s.0, s.1], padding: [padding.0, padding.1]), [self]) {
            windowAverage(rows: PoolingWindows.strided(input: shape[2], kernel: kernel.0, stride: s.0, padding: padding.0),
                          cols: PoolingWindows.strided(input: shape[3], kernel: kernel.1, stride: s.1, padding: padding.1))
        }
    }

    /// PyTorch's `F.adaptive_avg_pool2d`.
    public func adaptiveAvgPool2d(_ size: (Int, Int)) -> Tensor {
        precondition(rank == 4, "adaptiveAvgPool2d: input must be NCHW, got \(shape)")
        return Tensor.traced(.adaptiveAvgPool2d(size: [size.0, size.1]), [self]) {
            if size == (1, 1) { return mean(axes: [2, 3], keepDims: true) }
            return windowAverage(rows: .adaptive(input: shape[2], output: size.0), cols: .adaptive(input: shape[3], output: size.1))
        }
    }

    func windowAverage(rows: PoolingWindows, cols: PoolingWindows) -> Tensor {
        let outShape = [shape[0], shape[1], rows.count, cols.count]
        let storage = TensorStorage(count: Shape.count(outShape))
        PoolingKernels.averageForward(pointer, planes: shape[0] * shape[1], h: shape[2], w: shape[3], rows: rows, cols: cols, storage.pointer)
        return Tensor.recorded("avgPool2d", storage: storage, shape: outShape, inputs: [self],
                               backward: Derivatives.avgPool2d(rows, cols, inputShape: shape))
    }

    func windowAverageBackward(rows: PoolingWindows, cols: PoolingWindows, inputShape: [Int]) -> Tensor {
        let storage = TensorStorage(count: Shape.count(inputShape))
        PoolingKernels.averageBackward(pointer, planes: shape[0] * shape[1], h: inputShape[2], w: inputShape[3], rows: rows, cols: cols, storage.pointer)
        return Tensor.recorded("avgPool2dBackward", storage: storage, shape: inputShape, inputs: [self], backward: Derivatives.avgPool2dBackward(rows, cols))
    }
}

/// The layout a max pooling runs in: the input's dense channel-blocked layout (planes are an
/// image's channel block, `lanes` channels interleaved) or plain NCHW (`lanes` = 1).
struct MaxPoolPlan {
    let inFormat: DNNLFormat, outFormat: DNNLFormat
    let planes: Int, lanes: Int, inPerPlane: Int, outPerPlane: Int

    init(input: Tensor, outShape: [Int]) {
        let shape = input.shape
        if let (f, block) = input.denseChannelBlocked {
            inFormat = f
            outFormat = DNNLFormat.channelBlocked(outShape, block: block)
            lanes = block
        } else {
            inFormat = DNNLFormat.plain(shape)
            outFormat = DNNLFormat.plain(outShape)
            lanes = 1
        }
        planes = shape[0] * shape[1] / lanes
        inPerPlane = shape[2] * shape[3]
        outPerPlane = outShape[2] * outShape[3]
    }
}

/// Saved arg-max positions of a max pooling (flat index within each input plane).
final class PoolIndices: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int32>
    init(count: Int) { pointer = .allocate(capacity: max(count, 1)) }
    deinit { pointer.deallocate() }
}
