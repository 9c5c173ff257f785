/// 2-D convolution and its two adjoints. Each of the three is differentiable in terms of the
/// others (as in Swift for TensorFlow; their rules are in `Derivatives`), so convolutions have
/// gradients of every order.
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

    /// PyTorch's `F.conv2d`, followed by a ReLU when `fusedReLU` (computed in the same pass when
    /// nothing is recorded: inference).
    public func conv2d(_ weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                       dilation: (Int, Int) = (1, 1), groups: Int = 1, fusedReLU: Bool = false) -> Tensor {
        Tensor.traced(.conv2d(stride: [stride.0, stride.1], padding: [padding.0, padding.1], dilation: [dilation.0, dilation.1],
                              groups: groups, fusedReLU: fusedReLU), [self, weight] + (bias.map { [$0] } ?? [])) {
            convolved(weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups, fusedReLU: fusedReLU)
        }
    }

    private func convolved(_ weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                           dilation: (Int, Int), groups: Int, fusedReLU: Bool) -> Tensor {
        let g = Tensor.convGeometry(input: shape, weight: weight.shape, stride: stride, padding: padding, dilation: dilation, groups: groups)
        if let bias { precondition(bias.shape == [g.outChannels], "conv2d: bias shape \(bias.shape), expected [\(g.outChannels)]") }
        guard fusedReLU else { return Tensor.convolution(self, weight, bias: bias, g) }
        let inputs = [self, weight] + (bias.map { [$0] } ?? [])
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) { return Tensor.convolution(self, weight, bias: bias, g).relu() }
        FlopCounter.add(g.flops)
        let (storage, format) = Tensor.runConvolution(g, .forward, inputs, relu: true)
        return Tensor(storage: storage, format: format)
    }

    /// Runs a convolution pass on tensors: inputs are taken in the plan's formats (converted once
    /// and kept on the tensor), activation outputs stay in the plan's format, weight gradients are
    /// returned plain.
    static func runConvolution(_ g: ConvGeometry, _ pass: ConvolutionKernels.Pass, _ inputs: [Tensor], relu: Bool = false) -> (TensorStorage, DNNLFormat) {
        if WinogradPolicy.computes(g, pass) { return runWinograd(g, pass, inputs, relu: relu) }
        if GroupedPointwisePolicy.computes(g) { return runGroupedPointwise(g, pass, inputs, relu: relu) }
        let plan = ConvolutionKernels.plan(g, pass, bias: inputs.count == 3, relu: relu)
        let outFormat = plan.formats.last!
        let out = TensorStorage(count: outFormat.elementCount)
        var converted: [TensorStorage] = []
        plan.run(zip(plan.formats, inputs).map { $0.1.callData(in: $0.0, keepAlive: &converted) } + [out.pointer])
        withExtendedLifetime(converted) {}
        if pass == .backwardWeights {
            // Weight gradients go back to plain [out, in/groups, kh, kw] (oneDNN's grouped view is 5-D).
            if outFormat.isPlain { return (out, DNNLFormat.plain(g.weightShape)) }
            let plainOut = TensorStorage(count: Shape.count(g.weightShape))
            Reorder.run(from: outFormat, out.pointer, to: DNNLFormat.plain(outFormat.shape), plainOut.pointer)
            return (plainOut, DNNLFormat.plain(g.weightShape))
        }
        return (out, outFormat)
    }

    /// One pass of the convolution `g`, not recorded: forward (input, weight, [bias]), backward
    /// data (output gradient, weight) or backward weights (input, output gradient). For
    /// benchmarks and kernel tests; networks call `conv2d`.
    package static func convolutionPass(_ g: ConvGeometry, _ pass: ConvolutionKernels.Pass, _ inputs: [Tensor]) -> Tensor {
        let (storage, format) = runConvolution(g, pass, inputs)
        return Tensor(storage: storage, format: format)
    }

    static func convolution(_ x: Tensor, _ w: Tensor, bias: Tensor?, _ g: ConvGeometry) -> Tensor {
        FlopCounter.add(g.flops)
        let (storage, format) = runConvolution(g, .forward, [x, w] + (bias.map { [$0] } ?? []))
        return recorded("conv2d", storage: storage, format: format, inputs: [x, w] + (bias.map { [$0] } ?? []),
                        backward: Derivatives.conv2d(x, w, hasBias: bias != nil, g))
    }

    static func convBackwardData(_ gy: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
        let (storage, format) = runConvolution(g, .backwardData, [gy, w])
        return recorded("conv2dBackwardData", storage: storage, format: format, inputs: [gy, w],
                        backward: Derivatives.conv2dBackwardData(gy, w, g))
    }

    static func convBackwardWeights(_ x: Tensor, _ gy: Tensor, _ g: ConvGeometry) -> Tensor {
        let (storage, format) = runConvolution(g, .backwardWeights, [x, gy])
        return recorded("conv2dBackwardWeights", storage: storage, format: format, inputs: [x, gy],
                        backward: Derivatives.conv2dBackwardWeights(x, gy, g))
    }
}
