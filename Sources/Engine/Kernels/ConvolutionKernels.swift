import CDNNL

/// Shape and hyper-parameters of a 2-D convolution, PyTorch's conventions (dilation 1 = dense).
package struct ConvGeometry: Hashable, Sendable {
    package var batch, inChannels, height, width: Int
    package var outChannels, kernelH, kernelW: Int
    package var strideH, strideW, padH, padW, dilationH, dilationW, groups: Int

    package init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
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

    package var outHeight: Int { (height + 2 * padH - dilationH * (kernelH - 1) - 1) / strideH + 1 }
    package var outWidth: Int { (width + 2 * padW - dilationW * (kernelW - 1) - 1) / strideW + 1 }
    package var inputShape: [Int] { [batch, inChannels, height, width] }
    package var outputShape: [Int] { [batch, outChannels, outHeight, outWidth] }
    package var weightShape: [Int] { [outChannels, inChannels / groups, kernelH, kernelW] }
    /// Multiply-adds × 2 of one forward pass.
    package var flops: Double {
        2 * Double(batch * outChannels * outHeight * outWidth) * Double(inChannels / groups * kernelH * kernelW)
    }

    /// oneDNN's weight dimensions: a leading group dimension when grouped (same memory order).
    var dnnlWeightShape: [Int] {
        groups == 1 ? weightShape : [groups, outChannels / groups, inChannels / groups, kernelH, kernelW]
    }
}

/// A ready oneDNN primitive and the physical format of each of its arguments. Callers pass
/// buffers already laid out in those formats.
package final class DNNLPlan {
    let primitive: DNNLPrimitive
    /// Argument formats, in the order `run` takes the buffers.
    package let formats: [DNNLFormat]
    private let arguments: [Int32]
    private let memories: [DNNLMemory]

    init(_ primitive: DNNLPrimitive, _ arguments: [(Int32, DNNLFormat)]) {
        self.primitive = primitive
        self.arguments = arguments.map(\.0)
        formats = arguments.map(\.1)
        memories = formats.map { DNNLMemory($0.desc, allocate: false) }
    }

    package func run(_ buffers: [UnsafeMutablePointer<Float>]) {
        precondition(buffers.count == memories.count, "DNNLPlan: \(buffers.count) buffers for \(memories.count) arguments")
        for (m, b) in zip(memories, buffers) { m.bind(b) }
        primitive.execute(zip(arguments, memories).map { ($0.0, $0.1.memory) })
    }
}

/// Convolution forward, backward-data and backward-weights through oneDNN, with primitives cached by
/// geometry. Each plan says which layout it wants for every argument; activations stay in those
/// layouts between consecutive ops (see `Tensor.data(in:)`).
package enum ConvolutionKernels {
    /// When true (default) oneDNN picks its preferred layouts; when false, every argument is plain
    /// NCHW / OIHW (slower: oneDNN then falls back to a gemm path; kept for comparison).
    nonisolated(unsafe) package static var letLibraryChooseLayout = true

    package enum Pass: Int, Sendable { case forward, backwardData, backwardWeights }

    private struct Key: Hashable { let geometry: ConvGeometry; let pass: Pass; let bias: Bool; let relu: Bool; let anyLayout: Bool }
    /// Plans and forward hints, per thread (a plan's memory objects are bound anew by every call).
    private static let plans = PerThread<[Key: DNNLPlan]> { [:] }
    private static let forwardHints = PerThread<[Key: DNNLPrimitive]> { [:] }

    private static func spatial(_ g: ConvGeometry) -> ([dnnl_dim_t], [dnnl_dim_t], [dnnl_dim_t]) {
        (DNNL.dims([g.strideH, g.strideW]), DNNL.dims([g.dilationH - 1, g.dilationW - 1]), DNNL.dims([g.padH, g.padW]))
    }

    private static func descs(_ g: ConvGeometry, any: Bool) -> (dnnl_memory_desc_t, dnnl_memory_desc_t, dnnl_memory_desc_t) {
        (DNNL.memoryDesc(g.inputShape, any: any), DNNL.memoryDesc(g.dnnlWeightShape, any: any), DNNL.memoryDesc(g.outputShape, any: any))
    }

    private static func forwardPrimitive(_ g: ConvGeometry, bias: Bool, relu: Bool = false, any: Bool) -> DNNLPrimitive {
        let key = Key(geometry: g, pass: .forward, bias: bias, relu: relu, anyLayout: any)
        if let p = forwardHints.value[key] { return p }
        var (src, wei, dst) = descs(g, any: any)
        var b = DNNL.memoryDesc([g.outChannels])
        let (strides, dil, pad) = spatial(g)
        var desc = dnnl_convolution_desc_t()
        let status = withUnsafePointer(to: &b) { biasDesc in
            dnnl_dilated_convolution_forward_desc_init(&desc, relu ? dnnl_forward_inference : dnnl_forward_training, dnnl_convolution_direct,
                                                       &src, &wei, bias ? biasDesc : nil, &dst, strides, dil, pad, pad)
        }
        DNNL.check(status, "convolution_forward_desc_init \(g)")
        let p = DNNLPrimitive(&desc, reluPostOp: relu, what: relu ? "conv forward + relu" : "conv forward")
        forwardHints.value[key] = p
        return p
    }

    /// The plan of one pass. Argument order — forward: input, weight, [bias], output;
    /// backward-data: output gradient, weight, input gradient; backward-weights: input, output
    /// gradient, weight gradient. `relu` (forward only) applies a ReLU to the output in the same
    /// pass (an inference primitive: nothing is differentiated through it).
    package static func plan(_ g: ConvGeometry, _ pass: Pass, bias: Bool = false, relu: Bool = false) -> DNNLPlan {
        precondition(!relu || pass == .forward, "conv: a fused ReLU exists for the forward pass only")
        let any = letLibraryChooseLayout
        let key = Key(geometry: g, pass: pass, bias: bias, relu: relu, anyLayout: any)
        if let p = plans.value[key] { return p }
        let (inShape, wShape, outShape) = (g.inputShape, g.dnnlWeightShape, g.outputShape)
        let p: DNNLPlan
        switch pass {
        case .forward:
            let prim = forwardPrimitive(g, bias: bias, relu: relu, any: any)
            var args: [(Int32, DNNLFormat)] = [
                (DNNL.argSrc, DNNLFormat(prim.md(dnnl_query_src_md), shape: inShape)),
                (DNNL.argWeights, DNNLFormat(prim.md(dnnl_query_weights_md), shape: wShape)),
            ]
            if bias { args.append((DNNL.argBias, DNNLFormat.plain([g.outChannels]))) }
            args.append((DNNL.argDst, DNNLFormat(prim.md(dnnl_query_dst_md), shape: outShape)))
            p = DNNLPlan(prim, args)
        case .backwardData, .backwardWeights:
            var (src, wei, dst) = descs(g, any: any)
            let (strides, dil, pad) = spatial(g)
            var desc = dnnl_convolution_desc_t()
            let data = pass == .backwardData, what = data ? "conv backward data" : "conv backward weights"
            let status = data
                ? dnnl_dilated_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &src, &wei, &dst, strides, dil, pad, pad)
                : dnnl_dilated_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &src, &wei, nil, &dst, strides, dil, pad, pad)
            DNNL.check(status, "\(what) desc_init \(g)")
            let prim = DNNLPrimitive(&desc, hint: forwardPrimitive(g, bias: false, any: any), what: what)
            // Arguments in the plan's order: backward-data (output gradient, weight, input gradient),
            // backward-weights (input, output gradient, weight gradient).
            let arguments: [(Int32, dnnl_query_t, [Int])] = data
                ? [(DNNL.argDiffDst, dnnl_query_diff_dst_md, outShape), (DNNL.argWeights, dnnl_query_weights_md, wShape),
                   (DNNL.argDiffSrc, dnnl_query_diff_src_md, inShape)]
                : [(DNNL.argSrc, dnnl_query_src_md, inShape), (DNNL.argDiffDst, dnnl_query_diff_dst_md, outShape),
                   (DNNL.argDiffWeights, dnnl_query_diff_weights_md, wShape)]
            p = DNNLPlan(prim, arguments.map { ($0.0, DNNLFormat(prim.md($0.1), shape: $0.2)) })
        }
        plans.value[key] = p
        return p
    }

    /// Runs `pass` on plain buffers, converting to and from the plan's formats (for callers
    /// outside the tensor layer, such as benchmarks and tests).
    package static func runPlain(_ g: ConvGeometry, _ pass: Pass, _ buffers: [UnsafeMutablePointer<Float>]) {
        let p = plan(g, pass, bias: pass == .forward && buffers.count == 4)
        var converted: [UnsafeMutablePointer<Float>] = []
        var temporaries: [TensorStorage] = []
        for (i, (format, buffer)) in zip(p.formats, buffers).enumerated() {
            if format.isPlain { converted.append(buffer); continue }
            let t = TensorStorage(count: format.elementCount)
            temporaries.append(t)
            if i < buffers.count - 1 { Reorder.run(from: DNNLFormat.plain(format.shape), buffer, to: format, t.pointer) }
            converted.append(t.pointer)
        }
        p.run(converted)
        if let out = p.formats.last, !out.isPlain {
            Reorder.run(from: out, converted.last!, to: DNNLFormat.plain(out.shape), buffers.last!)
        }
        withExtendedLifetime(temporaries) {}
    }
}
