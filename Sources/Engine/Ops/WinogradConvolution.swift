/// The filters of a 3×3 convolution, transformed once for Winograd F(2×2, 3×3) inference
/// (`Tensor.winogradConvolution`). For frozen networks: the transform is taken from the weights'
/// values at creation.
public final class WinogradFilters {
    public let outChannels: Int
    public let inChannels: Int
    let storage: TensorStorage

    /// Transforms `weight` `[k, c, 3, 3]` (k and c multiples of 8).
    public init(_ weight: Tensor) {
        precondition(WinogradFilters.applies(weight: weight.shape),
                     "WinogradFilters: weight \(weight.shape) is not [k, c, 3, 3] with k and c multiples of 8")
        outChannels = weight.shape[0]; inChannels = weight.shape[1]
        storage = TensorStorage(count: 16 * outChannels * inChannels)
        WinogradKernels.transformFilters(weight.pointer, outChannels: outChannels, inChannels: inChannels, storage.pointer)
    }

    /// True for convolutions F(2×2, 3×3) computes here: 3×3 filters over channel counts that fill
    /// blocks of 8, stride 1, padding 1, no dilation, one group.
    public static func applies(weight: [Int], stride: (Int, Int) = (1, 1), padding: (Int, Int) = (1, 1),
                               dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Bool {
        weight.count == 4 && weight[2] == 3 && weight[3] == 3 && weight[0] % 8 == 0 && weight[1] % 8 == 0
            && stride == (1, 1) && padding == (1, 1) && dilation == (1, 1) && groups == 1
    }
}

extension Tensor {
    /// `conv2d(weight, bias:, padding: (1, 1))`, then a ReLU when `relu`, computed by Winograd
    /// F(2×2, 3×3): the same values up to rounding (the transforms add a few ulps; see
    /// `WinogradTests`), 2.25× fewer multiplications. Inference only: the result is not recorded.
    /// The output is laid out in NCHW8c, as oneDNN's convolutions produce it here.
    public func winogradConvolution(_ filters: WinogradFilters, bias: Tensor? = nil, relu: Bool = false) -> Tensor {
        precondition(rank == 4 && shape[1] == filters.inChannels,
                     "winogradConvolution: input \(shape) does not fit filters for \(filters.inChannels) input channels")
        if let bias { precondition(bias.shape == [filters.outChannels], "winogradConvolution: bias \(bias.shape), expected [\(filters.outChannels)]") }
        let (n, c, h, w, k) = (shape[0], shape[1], shape[2], shape[3], filters.outChannels)
        FlopCounter.add(2 * Double(n * k * c * 9 * h * w))  // the direct convolution's count (effective rate)
        let (tr, tc) = WinogradKernels.tiles(h, w)
        let tiles = n * tr * tc
        let v = TensorStorage(count: 16 * tiles * c), m = TensorStorage(count: 16 * tiles * k)
        WinogradKernels.transformInput(data(in: DNNLFormat.channelBlocked(shape, block: 8)), n: n, c: c, h: h, w: w, v.pointer)
        WinogradKernels.multiply(v.pointer, filters.storage.pointer, tiles: tiles, c: c, k: k, m.pointer)
        let format = DNNLFormat.channelBlocked([n, k, h, w], block: 8)
        let out = TensorStorage(count: format.elementCount)
        WinogradKernels.transformOutput(m.pointer, n: n, k: k, h: h, w: w, bias: bias?.pointer, relu: relu, out.pointer)
        return Tensor(storage: out, format: format)
    }
}
