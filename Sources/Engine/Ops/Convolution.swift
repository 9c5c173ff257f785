/// 2-D convolution and its two adjoints. Each of the three is differentiable in terms of the
/// others (as in Swift for TensorFlow), so convolutions have gradients of every order:
///
/// | op | ∂/∂ first argument | ∂/∂ second argument |
/// |---|---|---|
/// | y = conv(x, w) | backwardData(gy, w) | backwardWeights(x, gy) |
/// | gx = backwardData(gy, w) | conv(ggx, w) | backwardWeights(ggx, gy) |
/// | gw = backwardWeights(x, gy) | backwardData(gy, ggw) | conv(x, ggw) |
extension Tensor {
    static func convGeometry(input: [Int], weight: [Int], stride: (Int, Int), padding: (Int, Int),
                             dilation: (Int, Int), groups: Int) -> ConvGeometry {
        precondition(input.count == 4, "conv2d: input must be NCHW, got shape \(input)")
        precondition(weight.count == 4, "conv2d: weight must be [out, in/groups, kh, kw], got shape \(weight)")
        precondition(input[1] == weight[1] * groups,
                     "conv2d: input has \(input[1]) channels but weight \(weight) with groups \(groups) expects \(weight[1] * groups)")
        return ConvGeometry(batch: input[0], inChannels: input[1], height: input[2], width: input[3], outChannels: weight[0],
                            kernel: (weight[2], weight[3]), stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    /// PyTorch's `F.conv2d`.
    public func conv2d(_ weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                       dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
        let g = Tensor.convGeometry(input: shape, weight: weight.shape, stride: stride, padding: padding, dilation: dilation, groups: groups)
        if let bias { precondition(bias.shape == [g.outChannels], "conv2d: bias shape \(bias.shape), expected [\(g.outChannels)]") }
        return Tensor.convolution(self, weight, bias: bias, g)
    }

    static func convolution(_ x: Tensor, _ w: Tensor, bias: Tensor?, _ g: ConvGeometry) -> Tensor {
        let storage = TensorStorage(count: Shape.count(g.outputShape))
        ConvolutionKernels.forward(g, input: x.pointer, weight: w.pointer, bias: bias?.pointer, output: storage.pointer)
        return recorded("conv2d", storage: storage, shape: g.outputShape, inputs: [x, w] + (bias.map { [$0] } ?? [])) { gy, _, n in
            [n[0] ? convBackwardData(gy, w, g) : nil,
             n[1] ? convBackwardWeights(x, gy, g) : nil] + (bias == nil ? [] : [n[2] ? gy.sum(axes: [0, 2, 3]) : nil])
        }
    }

    static func convBackwardData(_ gy: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
        let storage = TensorStorage(count: Shape.count(g.inputShape))
        ConvolutionKernels.backwardData(g, gradOutput: gy.pointer, weight: w.pointer, gradInput: storage.pointer)
        return recorded("conv2dBackwardData", storage: storage, shape: g.inputShape, inputs: [gy, w]) { ggx, _, n in
            [n[0] ? convolution(ggx, w, bias: nil, g) : nil, n[1] ? convBackwardWeights(ggx, gy, g) : nil]
        }
    }

    static func convBackwardWeights(_ x: Tensor, _ gy: Tensor, _ g: ConvGeometry) -> Tensor {
        let storage = TensorStorage(count: Shape.count(g.weightShape))
        ConvolutionKernels.backwardWeights(g, input: x.pointer, gradOutput: gy.pointer, gradWeight: storage.pointer)
        return recorded("conv2dBackwardWeights", storage: storage, shape: g.weightShape, inputs: [x, gy]) { ggw, _, n in
            [n[0] ? convBackwardData(gy, ggw, g) : nil, n[1] ? convolution(x, ggw, bias: nil, g) : nil]
        }
    }
}
