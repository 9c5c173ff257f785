import Engine
import Foundation
import NN

/// What an exported graph holds besides the network: batch norm folded or kept, the input
/// normalisation baked in or left to the caller, the class names.
public struct ONNXExportOptions: Sendable {
    /// Fold each batch norm that directly follows a convolution into the convolution's weight
    /// and bias (what `mmkd eval` computes too); false keeps `BatchNormalization` nodes.
    public var foldBatchNorm = true
    /// When set, the graph takes images with values in [0, 1] (RGB, NCHW, as torchvision's
    /// `ToTensor` gives them) and normalises them itself: `(x − mean) / std` per channel.
    public var normalization: (mean: [Float], std: [Float])?
    /// The name of each class, in logit order; stored in the model's metadata as `class_names`
    /// (a JSON array).
    public var classNames: [String] = []
    /// The graph's name (the architecture).
    public var graphName = "network"
    /// More metadata entries (key → value).
    public var metadata: [String: String] = [:]

    public init() {}
}

/// An exported network: an ONNX model (opset 13, IR version 7) with one input, `input`
/// `[batch, C, H, W]`, and one output, `logits` `[batch, classes]`.
public struct ONNXModel {
    let proto: Onnx_ModelProto

    /// The model as the bytes of a `.onnx` file.
    public func serializedData() throws -> Data { try proto.serializedData() }

    /// How many nodes of each operator type the graph holds.
    public var operatorCounts: [String: Int] { proto.graph.node.reduce(into: [:]) { $0[$1.opType, default: 0] += 1 } }
    public var nodeCount: Int { proto.graph.node.count }
    /// Floats held by the graph's initializers.
    public var parameterCount: Int {
        proto.graph.initializer.filter { $0.dataType == Int32(Onnx_TensorProto.DataType.float.rawValue) }.reduce(0) { $0 + Int($1.dims.reduce(1, *)) }
    }
    /// The names of the graph's initializers (the network's state-dict keys among them).
    public var initializerNames: Set<String> { Set(proto.graph.initializer.map(\.name)) }
    public var opset: Int { Int(proto.opsetImport.first?.version ?? 0) }
    /// The model's metadata (key → value).
    public var metadata: [String: String] { Dictionary(proto.metadataProps.map { ($0.key, $0.value) }) { a, _ in a } }

    /// The logits the graph computes for `input`, evaluated op by op with the engine's own ops
    /// (`ONNXReferenceRunner`): an independent check of what was exported.
    public func run(_ input: Tensor) throws -> Tensor { try ONNXReferenceRunner(proto).run(input) }
}

/// Exports a network to ONNX by tracing its forward pass (as `torch.onnx.export` does): the ops
/// one forward in evaluation mode applies become the graph, its parameters and buffers the
/// initializers (under their state-dict names).
public enum ONNXExporter {
    public static let opset = 13

    /// Traces `forward` (the network's logits for a batch) on a batch of `traceBatch` random
    /// images of `imageShape` ([C, H, W]) and returns the graph. `network` is put in evaluation
    /// mode. Throws when the pass uses an op without an ONNX counterpart, or an op setting ONNX
    /// cannot express.
    public static func export(_ network: Module, imageShape: [Int], options: ONNXExportOptions = ONNXExportOptions(),
                              traceBatch: Int = 2, forward: (Tensor) -> Tensor) throws -> ONNXModel {
        precondition(imageShape.count == 3, "ONNXExporter: imageShape must be [C, H, W], got \(imageShape)")
        network.eval()
        var generator = RandomGenerator(seed: 0x0AA5)
        let sample = Tensor.randomNormal([traceBatch] + imageShape, generator: &generator)
        let (logits, trace) = withoutGrad { GraphTrace.record(input: sample, forward) }
        guard trace.unsupported.isEmpty else { throw ONNXExportError.unsupportedOps(trace.unsupported) }
        guard trace.isTraced(logits), logits !== sample else {
            throw ONNXExportError.unsupportedSetting("a network whose output does not depend on its input")
        }

        var b = ONNXGraphBuilder(parameters: network.stateDict)
        let input = b.fresh("input"), output = b.fresh("logits")
        var first = input
        if let norm = options.normalization {
            let c = imageShape[0]
            guard norm.mean.count == c, norm.std.count == c else {
                throw ONNXExportError.unsupportedSetting("a normalisation of \(norm.mean.count) means and \(norm.std.count) deviations for \(c) channels")
            }
            let scale = b.fresh("normalization.scale"), shift = b.fresh("normalization.shift")
            b.addInitializer(scale, floats: norm.std.map { 1 / $0 }, shape: [1, c, 1, 1])
            b.addInitializer(shift, floats: zip(norm.mean, norm.std).map { -$0 / $1 }, shape: [1, c, 1, 1])
            first = b.node("Add", [b.node("Mul", [input, scale]), shift])
        }
        b.bind(sample, to: first)
        try emitNodes(trace, into: &b, result: logits, resultName: output, foldBatchNorm: options.foldBatchNorm)

        var graph = b.graph
        graph.name = options.graphName
        graph.input = [ONNXGraphBuilder.valueInfo(input, shape: [traceBatch] + imageShape)]
        graph.output = [ONNXGraphBuilder.valueInfo(output, shape: logits.shape)]
        var model = Onnx_ModelProto()
        model.irVersion = 7
        var opsetID = Onnx_OperatorSetIdProto()
        opsetID.domain = ""
        opsetID.version = Int64(opset)
        model.opsetImport = [opsetID]
        model.producerName = "mmkd-swift"
        model.producerVersion = "1"
        model.graph = graph
        var metadata = options.metadata
        if !options.classNames.isEmpty,
           let json = try? JSONSerialization.data(withJSONObject: options.classNames, options: [.withoutEscapingSlashes]) {
            metadata["class_names"] = String(decoding: json, as: UTF8.self)
        }
        metadata["input"] = options.normalization == nil
            ? "float32 [batch, \(imageShape.map(String.init).joined(separator: ", "))], normalised as in training"
            : "float32 [batch, \(imageShape.map(String.init).joined(separator: ", "))], RGB values in [0, 1]; normalised by the graph"
        model.metadataProps = metadata.sorted { $0.key < $1.key }.map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key; entry.value = value
            return entry
        }
        model.docString = "\(options.graphName), exported by mmkd-swift (batch norm \(options.foldBatchNorm ? "folded into the convolutions" : "kept"))"
        return ONNXModel(proto: model)
    }

    /// The largest difference between the exported graph's logits and `forward`'s for `input`,
    /// relative to the largest logit: max|onnx − mmkd| / max|mmkd|.
    public static func relativeDifference(_ model: ONNXModel, input: Tensor, forward: (Tensor) -> Tensor) throws -> Float {
        let expected = withoutGrad { forward(input) }.scalars
        let got = try withoutGrad { try model.run(input) }
        guard got.shape == [input.shape[0], expected.count / Swift.max(input.shape[0], 1)] else {
            throw ONNXExportError.verificationFailed("logits of shape \(got.shape) for a batch of \(input.shape[0])")
        }
        let scale = expected.reduce(0) { Swift.max($0, Swift.abs($1)) }
        let diff = zip(got.scalars, expected).reduce(0) { Swift.max($0, Swift.abs($1.0 - $1.1)) }
        return diff / Swift.max(scale, .leastNormalMagnitude)
    }

    // MARK: - Traced ops → nodes

    private static func emitNodes(_ trace: GraphTrace, into b: inout ONNXGraphBuilder, result: Tensor, resultName: String,
                                  foldBatchNorm: Bool) throws {
        let nodes = trace.nodes
        var uses: [ObjectIdentifier: Int] = [ObjectIdentifier(result): 1]
        for node in nodes { for x in node.inputs { uses[ObjectIdentifier(x), default: 0] += 1 } }
        var merged = Set<Int>()

        /// Binds `tensor` to the output of the node now emitted (`logits` for the result).
        func outputName(_ tensor: Tensor) -> String? { tensor === result ? resultName : nil }
        func finish(_ tensor: Tensor, _ opType: String, _ inputs: [String], _ attributes: [Onnx_AttributeProto] = []) {
            b.bind(tensor, to: b.node(opType, inputs, attributes, output: outputName(tensor)))
        }
        /// Emits `opType` and, when `relu`, a ReLU after it; binds `tensor` to the last output.
        func finish(_ tensor: Tensor, _ opType: String, _ inputs: [String], _ attributes: [Onnx_AttributeProto], relu: Bool) {
            guard relu else { return finish(tensor, opType, inputs, attributes) }
            let pre = b.node(opType, inputs, attributes)
            b.bind(tensor, to: b.node("Relu", [pre], output: outputName(tensor)))
        }

        for (k, node) in nodes.enumerated() where !merged.contains(k) {
            let x = node.inputs[0]
            switch node.op {
            case let .conv2d(stride, padding, dilation, groups, fusedReLU):
                let w = node.inputs[1], bias = node.inputs.count > 2 ? node.inputs[2] : nil
                let attributes = [ONNXGraphBuilder.ints("kernel_shape", Array(w.shape[2...])), ONNXGraphBuilder.ints("strides", stride),
                                  ONNXGraphBuilder.ints("pads", padding + padding), ONNXGraphBuilder.ints("dilations", dilation),
                                  ONNXGraphBuilder.int("group", groups)]
                if foldBatchNorm, !fusedReLU, uses[ObjectIdentifier(node.output)] == 1, node.output !== result,
                   let j = nodes[(k + 1)...].firstIndex(where: { $0.inputs.contains { $0 === node.output } }),
                   case let .batchNorm(eps, bnReLU) = nodes[j].op, nodes[j].inputs[0] === node.output,
                   !([w] + (bias.map { [$0] } ?? []) + nodes[j].inputs[1...]).contains(where: trace.isTraced) {
                    let (fw, fb) = folded(w, bias, bn: Array(nodes[j].inputs[1...]), eps: eps)
                    let wName = b.fresh((b.parameterName(w) ?? "conv.weight") + ".bn_folded")
                    b.addInitializer(wName, floats: fw, shape: w.shape)
                    let bName = b.fresh((b.parameterName(nodes[j].inputs[2]).map { $0.replacingOccurrences(of: ".bias", with: "") } ?? "conv") + ".bias.bn_folded")
                    b.addInitializer(bName, floats: fb, shape: [w.shape[0]])
                    finish(nodes[j].output, "Conv", [b.value(x), wName, bName], attributes, relu: bnReLU)
                    merged.insert(j)
                } else {
                    finish(node.output, "Conv", node.inputs.map { b.value($0) }, attributes, relu: fusedReLU)
                }
            case let .batchNorm(eps, fusedReLU):
                finish(node.output, "BatchNormalization", node.inputs.map { b.value($0) }, [ONNXGraphBuilder.float("epsilon", eps)], relu: fusedReLU)
            case .linear:
                finish(node.output, "Gemm", node.inputs.map { b.value($0) }, [ONNXGraphBuilder.int("transB", 1)])
            case .relu:
                finish(node.output, "Relu", [b.value(x)])
            case let .clamp(low, high):
                let lowName = low.isFinite ? b.scalar(low, stem: "clip.min") : ""
                let highName = high.isFinite ? b.scalar(high, stem: "clip.max") : ""
                finish(node.output, "Clip", [b.value(x), lowName, highName])
            case .add: finish(node.output, "Add", node.inputs.map { b.value($0) })
            case .sub: finish(node.output, "Sub", node.inputs.map { b.value($0) })
            case .mul: finish(node.output, "Mul", node.inputs.map { b.value($0) })
            case .div: finish(node.output, "Div", node.inputs.map { b.value($0) })
            case let .maxPool2d(kernel, stride, padding):
                finish(node.output, "MaxPool", [b.value(x)], [ONNXGraphBuilder.ints("kernel_shape", kernel), ONNXGraphBuilder.ints("strides", stride),
                                                             ONNXGraphBuilder.ints("pads", padding + padding)])
            case let .avgPool2d(kernel, stride, padding):
                finish(node.output, "AveragePool", [b.value(x)], [ONNXGraphBuilder.ints("kernel_shape", kernel), ONNXGraphBuilder.ints("strides", stride),
                                                                 ONNXGraphBuilder.ints("pads", padding + padding), ONNXGraphBuilder.int("count_include_pad", 1)])
            case let .adaptiveAvgPool2d(size):
                let (h, w) = (x.shape[2], x.shape[3])
                if size == [1, 1] {
                    finish(node.output, "GlobalAveragePool", [b.value(x)])
                } else if size == [h, w] {
                    finish(node.output, "Identity", [b.value(x)])
                } else if h % size[0] == 0 && w % size[1] == 0 {
                    let kernel = [h / size[0], w / size[1]]
                    finish(node.output, "AveragePool", [b.value(x)], [ONNXGraphBuilder.ints("kernel_shape", kernel), ONNXGraphBuilder.ints("strides", kernel)])
                } else {
                    throw ONNXExportError.unsupportedSetting("adaptive average pooling from \(h)×\(w) to \(size[0])×\(size[1]) (windows of unequal sizes)")
                }
            case let .reshape(shape):
                // The batch dimension stays free: 0 copies the input's.
                let target = shape.first == x.shape.first ? [0] + shape.dropFirst() : shape
                finish(node.output, "Reshape", [b.value(x), b.int64s(target, stem: "shape")])
            case let .permute(order):
                finish(node.output, "Transpose", [b.value(x)], [ONNXGraphBuilder.ints("perm", order)])
            case let .concat(axis):
                finish(node.output, "Concat", node.inputs.map { b.value($0) }, [ONNXGraphBuilder.int("axis", axis)])
            case let .slice(axis, start, end):
                finish(node.output, "Slice", [b.value(x), b.int64s([start], stem: "slice.starts"), b.int64s([end], stem: "slice.ends"),
                                              b.int64s([axis], stem: "slice.axes")])
            case let .mean(axes, keepDims):
                finish(node.output, "ReduceMean", [b.value(x)], [ONNXGraphBuilder.ints("axes", axes), ONNXGraphBuilder.int("keepdims", keepDims ? 1 : 0)])
            }
        }
    }

    /// A convolution's weight and bias with the batch norm `bn` (γ, β, running mean, running
    /// variance) after it folded in: w·γ/σ and (b − μ)·γ/σ + β with σ = √(var + eps), in double
    /// precision.
    static func folded(_ w: Tensor, _ bias: Tensor?, bn: [Tensor], eps: Float) -> (weight: [Float], bias: [Float]) {
        let (gamma, beta, mean, variance) = (bn[0].scalars, bn[1].scalars, bn[2].scalars, bn[3].scalars)
        let out = w.shape[0], per = w.count / Swift.max(out, 1)
        let weights = w.scalars, b = bias?.scalars ?? [Float](repeating: 0, count: out)
        var fw = [Float](repeating: 0, count: w.count), fb = [Float](repeating: 0, count: out)
        for o in 0..<out {
            let scale = Double(gamma[o]) / (Double(variance[o]) + Double(eps)).squareRoot()
            for i in 0..<per { fw[o * per + i] = Float(Double(weights[o * per + i]) * scale) }
            fb[o] = Float((Double(b[o]) - Double(mean[o])) * scale + Double(beta[o]))
        }
        return (fw, fb)
    }
}
