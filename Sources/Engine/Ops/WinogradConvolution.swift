import Foundation

/// Which convolutions run as Winograd F(2×2, 3×3) (`WinogradKernels`) instead of oneDNN's direct
/// kernels: 3×3, stride 1, padding 1, one group, channel counts in blocks of 8, and wide enough
/// for the 2.25× fewer multiplications to win on this machine (`mmkd bench kernels --filter
/// winograd`). Forward, backward-data and backward-weights passes all qualify, so recorded
/// convolutions and their derivatives of every order use it too.
public enum WinogradPolicy {
    /// Default on; `MMKD_WINOGRAD=0` turns it off (every convolution then runs in oneDNN).
    nonisolated(unsafe) public static var isEnabled = ProcessInfo.processInfo.environment["MMKD_WINOGRAD"] != "0"
    /// The fewest channels on each side of the products (the convolution's input and output
    /// channels) for which Winograd is chosen: 128 measured here (at 64 channels oneDNN's forward
    /// and backward-data kernels are faster, 33 against 52 ms at 64@32×32), except for the weight
    /// gradient, which wins from 64 channels (65 against 47 ms at 64@32×32).
    nonisolated(unsafe) public static var minimumChannels = 128

    /// True when `g`'s `pass` runs as Winograd here.
    package static func computes(_ g: ConvGeometry, _ pass: ConvolutionKernels.Pass) -> Bool {
        let minimum = pass == .backwardWeights ? min(minimumChannels, 64) : minimumChannels
        return isEnabled && applies(g) && min(g.inChannels, g.outChannels) >= minimum
    }

    /// The output tile frozen-network inference (`Tensor.winogradConvolution` on folded weights)
    /// uses for `g`, or nil for oneDNN's direct kernel: F(4×4, 3×3) on maps of at least 4×4 from 64
    /// channels, F(2×2, 3×3) on smaller maps from `minimumChannels`. Measured here (`mmkd bench
    /// kernels --filter "conv infer"`, ms direct / F(2×2) / F(4×4)): 64@32×32 33 / 38 / 25–31,
    /// 128@16×16 38 / 25 / 18–21, 256@8×8 43 / 20 / 14–18, 512@4×4 46 / 19 / 14, 512@2×2 17 / 5 / 14.
    /// Training passes keep F(2×2, 3×3), whose rounding is closer to the direct kernels'.
    package static func inferenceOutputTile(_ g: ConvGeometry) -> Int? {
        guard isEnabled && applies(g) else { return nil }
        let channels = min(g.inChannels, g.outChannels)
        if g.height >= 4 && g.width >= 4 && channels >= min(minimumChannels, 64) { return 4 }
        return channels >= minimumChannels ? 2 : nil
    }

    /// True for the convolutions F(2×2, 3×3) can compute: 3×3 filters over channel counts that
    /// fill blocks of 8, stride 1, padding 1, no dilation, one group.
    package static func applies(_ g: ConvGeometry) -> Bool {
        g.kernelH == 3 && g.kernelW == 3 && g.inChannels % 8 == 0 && g.outChannels % 8 == 0
            && g.strideH == 1 && g.strideW == 1 && g.padH == 1 && g.padW == 1
            && g.dilationH == 1 && g.dilationW == 1 && g.groups == 1
    }
}

/// The filters of a 3×3 convolution, transformed for Winograd F(2×2, 3×3) or F(4×4, 3×3)
/// (`Tensor.winogradConvolution`): the transform is taken from the weights' values at creation,
/// so frozen networks keep them across calls.
public final class WinogradFilters {
    public let outChannels: Int
    public let inChannels: Int
    /// The side of the output tiles: 2 for F(2×2, 3×3), 4 for F(4×4, 3×3).
    public let outputTile: Int
    let storage: TensorStorage

    /// Positions ξ of a transformed tile: 16 for F(2×2, 3×3), 36 for F(4×4, 3×3).
    var positions: Int { (outputTile + 2) * (outputTile + 2) }

    /// Transforms `weight` `[k, c, 3, 3]` (k and c multiples of 8) for output tiles of
    /// `outputTile` (2 or 4); `flipped` transforms the transposed convolution's filters (backward
    /// data).
    public init(_ weight: Tensor, flipped: Bool = false, outputTile: Int = 2) {
        precondition(WinogradFilters.applies(weight: weight.shape),
                     "WinogradFilters: weight \(weight.shape) is not [k, c, 3, 3] with k and c multiples of 8")
        precondition(outputTile == 2 || outputTile == 4, "WinogradFilters: output tiles of \(outputTile), expected 2 or 4")
        let (k, c) = (weight.shape[0], weight.shape[1])
        (outChannels, inChannels) = flipped ? (c, k) : (k, c)
        self.outputTile = outputTile
        storage = TensorStorage(count: (outputTile + 2) * (outputTile + 2) * k * c)
        let plain = weight.data(in: DNNLFormat.plain(weight.shape))
        if outputTile == 4 {
            WinogradF4Kernels.transformFilters(plain, outChannels: k, inChannels: c, flipped: flipped, storage.pointer)
        } else {
            WinogradKernels.transformFilters(plain, outChannels: k, inChannels: c, flipped: flipped, storage.pointer)
        }
    }

    /// True for weights F(2×2, 3×3) computes (see `WinogradPolicy.applies`).
    public static func applies(weight: [Int], stride: (Int, Int) = (1, 1), padding: (Int, Int) = (1, 1),
                               dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Bool {
        // 3×3 first: the geometry below is only well-formed for filters that fit its 3×3 map.
        weight.count == 4 && weight[2] == 3 && weight[3] == 3 && WinogradPolicy.applies(
            ConvGeometry(batch: 1, inChannels: weight[1] * groups, height: 3, width: 3, outChannels: weight[0],
                         kernel: (weight[2], weight[3]), stride: stride, padding: padding, dilation: dilation, groups: groups))
    }
}

extension Tensor {
    /// `conv2d(weight, bias:, padding: (1, 1))`, then a ReLU when `relu`, computed by Winograd
    /// F(2×2, 3×3) or F(4×4, 3×3) as `filters` were transformed: the same values up to rounding
    /// (the transforms add a few ulps; see `WinogradTests`), 2.25× or 4× fewer multiplications.
    /// Inference only: the result is not recorded.
    /// The output is laid out in NCHW8c, as oneDNN's convolutions produce it here.
    public func winogradConvolution(_ filters: WinogradFilters, bias: Tensor? = nil, relu: Bool = false) -> Tensor {
        precondition(rank == 4 && shape[1] == filters.inChannels,
                     "winogradConvolution: input \(shape) does not fit filters for \(filters.inChannels) input channels")
        if let bias { precondition(bias.shape == [filters.outChannels], "winogradConvolution: bias \(bias.shape), expected [\(filters.outChannels)]") }
        FlopCounter.add(2 * Double(shape[0] * filters.outChannels * shape[1] * 9 * shape[2] * shape[3]))  // the direct count
        let (storage, format) = Tensor.winogradForward(self, filters, bias: bias, relu: relu)
        return Tensor(storage: storage, format: format)
    }

    /// One convolution pass by Winograd F(2×2, 3×3), for geometries `WinogradPolicy.applies` to;
    /// inputs and result as `runConvolution`'s (activations in NCHW8c, weight gradients plain).
    static func runWinograd(_ g: ConvGeometry, _ pass: ConvolutionKernels.Pass, _ inputs: [Tensor], relu: Bool) -> (TensorStorage, DNNLFormat) {
        switch pass {
        case .forward:
            return winogradForward(inputs[0], WinogradFilters(inputs[1]), bias: inputs.count == 3 ? inputs[2] : nil, relu: relu)
        case .backwardData:
            // The gradient of a 3×3, padding-1 convolution's input is the convolution of the
            // output gradient with the transposed, 180°-rotated filters.
            return winogradForward(inputs[0], WinogradFilters(inputs[1], flipped: true), bias: nil, relu: false)
        case .backwardWeights:
            let (n, c, h, w, k) = (g.batch, g.inChannels, g.height, g.width, g.outChannels)
            let x = inputs[0].data(in: DNNLFormat.channelBlocked(g.inputShape, block: 8))
            let gy = inputs[1].data(in: DNNLFormat.channelBlocked(g.outputShape, block: 8))
            // ū[ξ] = Σ over blocks of images of m̄[ξ]ᵀ·v[ξ]: [k, tiles]·[tiles, c].
            let ubar = TensorStorage(count: 16 * k * c)
            forEachImageBlock(n: n, h: h, w: w, channels: c + k) { first, images, tiles in
                let v = TensorStorage(count: 16 * tiles * c), mbar = TensorStorage(count: 16 * tiles * k)
                WinogradKernels.transformInput(x + first * c * h * w, n: images, c: c, h: h, w: w, v.pointer)
                WinogradKernels.transformOutputGradient(gy + first * k * h * w, n: images, k: k, h: h, w: w, mbar.pointer)
                WinogradKernels.multiply(mbar.pointer, v.pointer, ubar.pointer, m: k, n: c, k: tiles, transposeA: true, accumulate: first > 0)
            }
            let out = TensorStorage(count: Shape.count(g.weightShape))
            WinogradKernels.transformFilterGradient(ubar.pointer, outChannels: k, inChannels: c, out.pointer)
            return (out, DNNLFormat.plain(g.weightShape))
        }
    }

    /// The forward convolution of `x` with transformed `filters`, in NCHW8c.
    private static func winogradForward(_ x: Tensor, _ filters: WinogradFilters, bias: Tensor?, relu: Bool) -> (TensorStorage, DNNLFormat) {
        let (n, c, h, w, k) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], filters.outChannels)
        let input = x.data(in: DNNLFormat.channelBlocked(x.shape, block: 8))
        let biasValues = bias.map { $0.data(in: DNNLFormat.plain($0.shape)) }
        let format = DNNLFormat.channelBlocked([n, k, h, w], block: 8)
        let out = TensorStorage(count: format.elementCount)
        let positions = filters.positions, large = filters.outputTile == 4
        forEachImageBlock(n: n, h: h, w: w, outputTile: filters.outputTile, channels: c + k) { first, images, tiles in
            let v = TensorStorage(count: positions * tiles * c), m = TensorStorage(count: positions * tiles * k)
            let (src, dst) = (input + first * c * h * w, out.pointer + first * k * h * w)
            if large {
                WinogradF4Kernels.transformInput(src, n: images, c: c, h: h, w: w, v.pointer)
            } else {
                WinogradKernels.transformInput(src, n: images, c: c, h: h, w: w, v.pointer)
            }
            WinogradKernels.multiply(v.pointer, filters.storage.pointer, m.pointer, m: tiles, n: k, k: c, positions: positions)
            if large {
                WinogradF4Kernels.transformOutput(m.pointer, n: images, k: k, h: h, w: w, bias: biasValues, relu: relu, dst)
            } else {
                WinogradKernels.transformOutput(m.pointer, n: images, k: k, h: h, w: w, bias: biasValues, relu: relu, dst)
            }
        }
        return (out, format)
    }

    /// Runs `body(first image, images, tiles)` over consecutive blocks of the batch small enough
    /// that one block's transformed tiles (16 or 36 values per tile and channel, over `channels` input
    /// plus output channels) stay within `WinogradKernels.blockBytes`: the transforms and products
    /// then work in cache instead of streaming whole-batch buffers through memory.
    private static func forEachImageBlock(n: Int, h: Int, w: Int, outputTile: Int = 2, channels: Int, _ body: (Int, Int, Int) -> Void) {
        let (tr, tc) = WinogradKernels.tiles(h, w, outputTile: outputTile)
        let bytesPerImage = (outputTile + 2) * (outputTile + 2) * tr * tc * channels * MemoryLayout<Float>.stride
        let perBlock = Swift.max(1, Swift.min(n, WinogradKernels.blockBytes / bytesPerImage))
        var first = 0
        while first < n {
            let images = Swift.min(perBlock, n - first)
            body(first, images, images * tr * tc)
            first += images
        }
    }
}
