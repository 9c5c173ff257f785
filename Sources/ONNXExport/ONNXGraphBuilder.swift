import Engine
import Foundation

/// Turns a `GraphTrace` of a network's forward pass into an ONNX graph (opset 13): one node per
/// traced op (two where the engine fused a ReLU into it), the network's parameters and buffers as
/// initializers under their state-dict names, every other constant the pass read as an
/// initializer of its own, and a batch dimension left free (`Reshape` copies it with 0).
struct ONNXGraphBuilder {
    private(set) var graph = Onnx_GraphProto()
    private var names: [ObjectIdentifier: String] = [:]
    private var parameterNames: [ObjectIdentifier: String]
    private var usedNames: Set<String> = []
    private var counter = 0

    /// `parameters`: the network's state dict; the tensors the trace reads from it become
    /// initializers named by their keys.
    init(parameters: [(String, Tensor)]) {
        parameterNames = [:]
        for (name, tensor) in parameters where parameterNames[ObjectIdentifier(tensor)] == nil {
            parameterNames[ObjectIdentifier(tensor)] = name
        }
    }

    // MARK: - Values

    /// A fresh value name starting with `stem`.
    mutating func fresh(_ stem: String) -> String {
        var name = stem
        while usedNames.contains(name) { counter += 1; name = "\(stem)_\(counter)" }
        usedNames.insert(name)
        return name
    }

    /// Names `tensor` as the value `name` (a graph input or a node's output).
    mutating func bind(_ tensor: Tensor, to name: String) { names[ObjectIdentifier(tensor)] = name }

    /// The value name of `tensor`: bound earlier, or a parameter or constant, added as an
    /// initializer on first use.
    mutating func value(_ tensor: Tensor) -> String {
        if let name = names[ObjectIdentifier(tensor)] { return name }
        let name = fresh(parameterNames[ObjectIdentifier(tensor)] ?? "constant")
        addInitializer(name, floats: tensor.scalars, shape: tensor.shape)
        bind(tensor, to: name)
        return name
    }

    /// The state-dict key of `tensor`, if it is one of the network's.
    func parameterName(_ tensor: Tensor) -> String? { parameterNames[ObjectIdentifier(tensor)] }

    mutating func addInitializer(_ name: String, floats: [Float], shape: [Int]) {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = shape.map(Int64.init)
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.rawData = floats.withUnsafeBufferPointer { p in Data(buffer: p) }.littleEndianFloats
        usedNames.insert(name)
        graph.initializer.append(t)
    }

    /// An INT64 initializer (shapes and indices), named after `stem`.
    mutating func int64s(_ values: [Int], stem: String) -> String {
        let name = fresh(stem)
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = [Int64(values.count)]
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.int64Data = values.map(Int64.init)
        graph.initializer.append(t)
        return name
    }

    /// A scalar FLOAT initializer named after `stem`.
    mutating func scalar(_ value: Float, stem: String) -> String {
        let name = fresh(stem)
        addInitializer(name, floats: [value], shape: [])
        return name
    }

    // MARK: - Nodes

    /// Appends the node `opType(inputs)` and returns its output's name.
    @discardableResult
    mutating func node(_ opType: String, _ inputs: [String], _ attributes: [Onnx_AttributeProto] = [], output: String? = nil) -> String {
        var n = Onnx_NodeProto()
        n.opType = opType
        n.name = fresh(opType)
        n.input = inputs
        let out = output ?? fresh(n.name + "_output")
        n.output = [out]
        n.attribute = attributes
        graph.node.append(n)
        return out
    }

    static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .ints; a.ints = values.map(Int64.init)
        return a
    }

    static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .int; a.i = Int64(value)
        return a
    }

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name; a.type = .float; a.f = value
        return a
    }

    /// A float tensor value description with a free leading dimension named `batch`.
    static func valueInfo(_ name: String, shape: [Int], batchName: String = "batch") -> Onnx_ValueInfoProto {
        var info = Onnx_ValueInfoProto()
        info.name = name
        var tensorType = Onnx_TypeProto.Tensor()
        tensorType.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        tensorType.shape.dim = shape.enumerated().map { i, extent in
            var d = Onnx_TensorShapeProto.Dimension()
            if i == 0 { d.dimParam = batchName } else { d.dimValue = Int64(extent) }
            return d
        }
        info.type.tensorType = tensorType
        return info
    }
}

extension Data {
    /// These bytes, read as host floats, in ONNX's little-endian order.
    var littleEndianFloats: Data {
        #if _endian(little)
        return self
        #else
        var out = Data(count: count)
        for i in Swift.stride(from: 0, to: count, by: 4) { for b in 0..<4 { out[i + b] = self[i + 3 - b] } }
        return out
        #endif
    }
}
