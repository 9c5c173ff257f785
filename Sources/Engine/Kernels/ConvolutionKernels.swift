import CDNNL

/// Shape and hyper-parameters of a 2-D convolution, PyTorch's conventions (dilation 1 = dense).
public struct ConvGeometry: Hashable, Sendable {
    public var batch, inChannels, height, width: Int
    public var outChannels, kernelH, kernelW: Int
    public var strideH, strideW, padH, padW, dilationH, dilationW, groups: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernel: (Int, Int), stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                dilation: (Int, Int) = (1, 1), groups: Int = 1) {
        self.batch = batch; self.inChannels = inChannels; self.height = height; self.width = width
        self.outChannels = outChannels; kernelH = kernel.0; kernelW = kernel.1
        strideH = stride.0; strideW = stride.1; padH = padding.0; padW = padding.1
        dilationH = dilation.0; dilationW = dilation.1; self.groups = groups
        precondition(groups > 0 && inChannels % groups == 0 && outChannels % groups == 0,
                     "conv2d: groups \(groups) must divide in-channels \(inChannels) and out-channels \(outChannels)")
        precondition(outHeight > 0 && outWidth > 0,
                     "conv2d: input \(height)×\(width) too small for kernel \(kernelH)×\(kernelW) with padding \(padH),\(padW)")
    }

    public var outHeight: Int { (height + 2 * padH - dilationH * (kernelH - 1) - 1) / strideH + 1 }
    public var outWidth: Int { (width + 2 * padW - dilationW * (kernelW - 1) - 1) / strideW + 1 }
    public var inputShape: [Int] { [batch, inChannels, height, width] }
    public var outputShape: [Int] { [batch, outChannels, outHeight, outWidth] }
    public var weightShape: [Int] { [outChannels, inChannels / groups, kernelH, kernelW] }
    /// Multiply-adds × 2 of one forward pass.
    public var flops: Double {
        2 * Double(batch * outChannels * outHeight * outWidth) * Double(inChannels / groups * kernelH * kernelW)
    }

    /// oneDNN's weight dimensions: a leading group dimension when grouped (same memory order).
    var dnnlWeightShape: [Int] {
        groups == 1 ? weightShape : [groups, outChannels / groups, inChannels / groups, kernelH, kernelW]
    }
}

/// Convolution forward, backward-data and backward-weights through oneDNN, with primitives cached by
/// geometry. Buffers are plain NCHW / OIHW; the primitives may compute in blocked layouts.
public enum ConvolutionKernels {
    /// When true (default) oneDNN picks its preferred layouts and arguments are reordered on the way
    /// in and out; when false, the primitives work on plain NCHW directly.
    nonisolated(unsafe) public static var letLibraryChooseLayout = true

    private final class Plan {
        let primitive: DNNLPrimitive
        let arguments: [(Int32, DNNLArgument)]
        init(_ primitive: DNNLPrimitive, _ arguments: [(Int32, DNNLArgument)]) {
            self.primitive = primitive; self.arguments = arguments
        }
        func run(_ pointers: [UnsafeMutablePointer<Float>]) {
            let mems = zip(arguments, pointers).map { ($0.0.0, $0.0.1.prepare($0.1)) }
            primitive.execute(mems)
            for (_, a) in arguments { a.finish() }
        }
    }

    private struct Key: Hashable { let geometry: ConvGeometry; let kind: Int; let bias: Bool; let anyLayout: Bool }
    nonisolated(unsafe) private static var plans: [Key: Plan] = [:]
    nonisolated(unsafe) private static var forwardDescriptors: [Key: DNNLPrimitive] = [:]

    private static func spatial(_ g: ConvGeometry) -> ([dnnl_dim_t], [dnnl_dim_t], [dnnl_dim_t]) {
        (DNNL.dims([g.strideH, g.strideW]), DNNL.dims([g.dilationH - 1, g.dilationW - 1]), DNNL.dims([g.padH, g.padW]))
    }

    private static func descs(_ g: ConvGeometry, any: Bool) -> (dnnl_memory_desc_t, dnnl_memory_desc_t, dnnl_memory_desc_t) {
        (DNNL.memoryDesc(g.inputShape, any: any), DNNL.memoryDesc(g.dnnlWeightShape, any: any), DNNL.memoryDesc(g.outputShape, any: any))
    }

    private static func forwardPrimitive(_ g: ConvGeometry, bias: Bool, any: Bool) -> DNNLPrimitive {
        let key = Key(geometry: g, kind: 0, bias: bias, anyLayout: any)
        if let p = forwardDescriptors[key] { return p }
        var (src, wei, dst) = descs(g, any: any)
        var b = DNNL.memoryDesc([g.outChannels])
        let (strides, dil, pad) = spatial(g)
        var desc = dnnl_convolution_desc_t()
        let status = withUnsafePointer(to: &b) { biasDesc in
            dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct,
                                                       &src, &wei, bias ? biasDesc : nil, &dst, strides, dil, pad, pad)
        }
        DNNL.check(status, "convolution_forward_desc_init \(g)")
        let p = DNNLPrimitive(&desc, what: "conv forward")
        forwardDescriptors[key] = p
        return p
    }

    private static func plan(_ g: ConvGeometry, kind: Int, bias: Bool) -> Plan {
        let any = letLibraryChooseLayout
        let key = Key(geometry: g, kind: kind, bias: bias, anyLayout: any)
        if let p = plans[key] { return p }
        let p: Plan
        switch kind {
        case 0:
            let prim = forwardPrimitive(g, bias: bias, any: any)
            var args: [(Int32, DNNLArgument)] = [
                (DNNL.argSrc, DNNLArgument(plain: g.inputShape, chosen: prim.md(dnnl_query_src_md), isInput: true)),
                (DNNL.argWeights, DNNLArgument(plain: g.dnnlWeightShape, chosen: prim.md(dnnl_query_weights_md), isInput: true)),
            ]
            if bias { args.append((DNNL.argBias, DNNLArgument(plain: [g.outChannels], chosen: DNNL.memoryDesc([g.outChannels]), isInput: true))) }
            args.append((DNNL.argDst, DNNLArgument(plain: g.outputShape, chosen: prim.md(dnnl_query_dst_md), isInput: false)))
            p = Plan(prim, args)
        case 1:
            var (src, wei, dst) = descs(g, any: any)
            let (strides, dil, pad) = spatial(g)
            var desc = dnnl_convolution_desc_t()
            DNNL.check(dnnl_dilated_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &src, &wei, &dst,
                                                                        strides, dil, pad, pad), "convolution_backward_data_desc_init \(g)")
            let prim = DNNLPrimitive(&desc, hint: forwardPrimitive(g, bias: false, any: any), what: "conv backward data")
            p = Plan(prim, [
                (DNNL.argDiffDst, DNNLArgument(plain: g.outputShape, chosen: prim.md(dnnl_query_diff_dst_md), isInput: true)),
                (DNNL.argWeights, DNNLArgument(plain: g.dnnlWeightShape, chosen: prim.md(dnnl_query_weights_md), isInput: true)),
                (DNNL.argDiffSrc, DNNLArgument(plain: g.inputShape, chosen: prim.md(dnnl_query_diff_src_md), isInput: false)),
            ])
        default:
            var (src, wei, dst) = descs(g, any: any)
            let (strides, dil, pad) = spatial(g)
            var desc = dnnl_convolution_desc_t()
            DNNL.check(dnnl_dilated_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &src, &wei, nil, &dst,
                                                                           strides, dil, pad, pad), "convolution_backward_weights_desc_init \(g)")
            let prim = DNNLPrimitive(&desc, hint: forwardPrimitive(g, bias: false, any: any), what: "conv backward weights")
            p = Plan(prim, [
                (DNNL.argSrc, DNNLArgument(plain: g.inputShape, chosen: prim.md(dnnl_query_src_md), isInput: true)),
                (DNNL.argDiffDst, DNNLArgument(plain: g.outputShape, chosen: prim.md(dnnl_query_diff_dst_md), isInput: true)),
                (DNNL.argDiffWeights, DNNLArgument(plain: g.dnnlWeightShape, chosen: prim.md(dnnl_query_diff_weights_md), isInput: false)),
            ])
        }
        plans[key] = p
        return p
    }

    /// `y = conv(x, w) + bias`.
    public static func forward(_ g: ConvGeometry, input: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>,
                               bias: UnsafeMutablePointer<Float>?, output: UnsafeMutablePointer<Float>) {
        let p = plan(g, kind: 0, bias: bias != nil)
        p.run(bias.map { [input, weight, $0, output] } ?? [input, weight, output])
    }

    /// `gx = ∂⟨gy, conv(x, w)⟩/∂x` (a transposed convolution of `gy`).
    public static func backwardData(_ g: ConvGeometry, gradOutput: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>,
                                    gradInput: UnsafeMutablePointer<Float>) {
        plan(g, kind: 1, bias: false).run([gradOutput, weight, gradInput])
    }

    /// `gw = ∂⟨gy, conv(x, w)⟩/∂w`.
    public static func backwardWeights(_ g: ConvGeometry, input: UnsafeMutablePointer<Float>, gradOutput: UnsafeMutablePointer<Float>,
                                       gradWeight: UnsafeMutablePointer<Float>) {
        plan(g, kind: 2, bias: false).run([input, gradOutput, gradWeight])
    }
}
