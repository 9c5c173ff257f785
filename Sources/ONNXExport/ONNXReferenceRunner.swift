import Engine
import Foundation

/// Evaluates a graph this exporter wrote, node by node, with the engine's own ops: the check that
/// the serialised graph (its initializers' bytes, attributes, the free batch dimension, folded
/// batch norm) computes what the network computes, without an ONNX runtime. It reads only
/// models built in this process (`ONNXModel`), never a file, and knows exactly the operators the
/// exporter emits; anything else is an error naming the node.
struct ONNXReferenceRunner {
    private let model: Onnx_ModelProto

    init(_ model: Onnx_ModelProto) { self.model = model }

    func run(_ input: Tensor) throws -> Tensor {
        let graph = model.graph
        var values: [String: Tensor] = [:]
        var shapes: [String: [Int]] = [:]   // INT64 initializers
        for t in graph.initializer {
            let dims = t.dims.map { Int($0) }
            switch Onnx_TensorProto.DataType(rawValue: Int(t.dataType)) {
            case .float?:
                let floats = t.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                guard floats.count == dims.reduce(1, *) else { throw failure("initializer '\(t.name)' holds \(floats.count) floats for shape \(dims)") }
                values[t.name] = Tensor(floats, shape: dims)
            case .int64?:
                shapes[t.name] = t.int64Data.map { Int($0) }
            default:
                throw failure("initializer '\(t.name)' has data type \(t.dataType)")
            }
        }
        guard let inputName = graph.input.first?.name, let outputName = graph.output.first?.name else { throw failure("the graph has no input or output") }
        values[inputName] = input
        for node in graph.node {
            func tensor(_ i: Int) throws -> Tensor {
                guard i < node.input.count, let t = values[node.input[i]] else { throw failure("node '\(node.name)' reads '\(i < node.input.count ? node.input[i] : "?")', which is not computed before it") }
                return t
            }
            func optional(_ i: Int) throws -> Tensor? { i < node.input.count && !node.input[i].isEmpty ? try tensor(i) : nil }
            func integers(_ i: Int) throws -> [Int] {
                guard i < node.input.count, let v = shapes[node.input[i]] else { throw failure("node '\(node.name)' needs the INT64 initializer '\(i < node.input.count ? node.input[i] : "?")'") }
                return v
            }
            let attributes = Dictionary(node.attribute.map { ($0.name, $0) }) { a, _ in a }
            func ints(_ name: String, _ fallback: [Int]) -> [Int] { attributes[name].map { $0.ints.map { Int($0) } } ?? fallback }
            func int(_ name: String, _ fallback: Int) -> Int { attributes[name].map { Int($0.i) } ?? fallback }
            func pair(_ v: [Int]) -> (Int, Int) { (v[0], v[1]) }
            let x = try tensor(0)
            let y: Tensor
            switch node.opType {
            case "Conv":
                let pads = ints("pads", [0, 0, 0, 0])
                guard pads.count == 4, pads[0] == pads[2], pads[1] == pads[3] else { throw failure("node '\(node.name)' has asymmetric pads \(pads)") }
                y = x.conv2d(try tensor(1), bias: try optional(2), stride: pair(ints("strides", [1, 1])), padding: (pads[0], pads[1]),
                             dilation: pair(ints("dilations", [1, 1])), groups: int("group", 1))
            case "BatchNormalization":
                y = x.batchNormInference(weight: try tensor(1), bias: try tensor(2), runningMean: try tensor(3), runningVariance: try tensor(4),
                                         eps: attributes["epsilon"]?.f ?? 1e-5)
            case "Gemm":
                guard int("transB", 0) == 1, int("transA", 0) == 0 else { throw failure("node '\(node.name)': only Gemm with transB = 1 is written") }
                y = x.linear(try tensor(1), bias: try optional(2))
            case "Relu": y = x.relu()
            case "Clip": y = x.clamped(min: try optional(1)?.item ?? -.infinity, max: try optional(2)?.item ?? .infinity)
            case "Add": y = x + (try tensor(1))
            case "Sub": y = x - (try tensor(1))
            case "Mul": y = x * (try tensor(1))
            case "Div": y = x / (try tensor(1))
            case "MaxPool", "AveragePool":
                let pads = ints("pads", [0, 0, 0, 0])
                let kernel = ints("kernel_shape", [1, 1])
                let stride = pair(ints("strides", kernel))
                if node.opType == "MaxPool" {
                    y = x.maxPool2d(kernel: pair(kernel), stride: stride, padding: (pads[0], pads[1]))
                } else {
                    guard int("count_include_pad", 0) == 1 || pads.allSatisfy({ $0 == 0 }) else { throw failure("node '\(node.name)' excludes padding") }
                    y = x.avgPool2d(kernel: pair(kernel), stride: stride, padding: (pads[0], pads[1]))
                }
            case "GlobalAveragePool": y = x.adaptiveAvgPool2d((1, 1))
            case "Identity": y = x
            case "Reshape":
                var target = try integers(1).enumerated().map { i, d in d == 0 && i < x.rank ? x.shape[i] : d }
                let known = target.filter { $0 != -1 }.reduce(1, *)
                if let free = target.firstIndex(of: -1), known > 0, x.count % known == 0 { target[free] = x.count / known }
                guard target.allSatisfy({ $0 >= 0 }), target.reduce(1, *) == x.count else {
                    throw failure("node '\(node.name)' (Reshape) cannot give the \(x.shape) values the shape \(try integers(1)): the graph fixes the batch size")
                }
                y = x.reshaped(target)
            case "Transpose": y = x.permuted(ints("perm", Array((0..<x.rank).reversed())))
            case "Concat": y = Tensor.concat(try (0..<node.input.count).map(tensor), axis: int("axis", 0))
            case "Slice":
                let (starts, ends, axes) = (try integers(1), try integers(2), try integers(3))
                y = x.slice(axis: axes[0], starts[0]..<Swift.min(ends[0], x.shape[axes[0]]))
            case "ReduceMean": y = x.mean(axes: ints("axes", Array(0..<x.rank)), keepDims: int("keepdims", 1) == 1)
            default:
                throw failure("node '\(node.name)' is a \(node.opType), which this runner does not evaluate")
            }
            values[node.output[0]] = y
        }
        guard let out = values[outputName] else { throw failure("the output '\(outputName)' is never computed") }
        return out
    }

    private func failure(_ what: String) -> ONNXExportError { .verificationFailed(what) }
}
