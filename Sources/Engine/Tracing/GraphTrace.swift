#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An op as an exporter sees it: what it computes and its settings, not how the engine computes
/// it (which kernel, which layout, which fusion). The inputs of a `TracedNode` are, in order:
///
/// | op | inputs |
/// |---|---|
/// | `conv2d` | x, weight `[out, in/groups, kh, kw]`, bias `[out]` (optional) |
/// | `batchNorm` | x, γ, β, running mean, running variance (inference: the running statistics) |
/// | `linear` | x `[N, in]`, weight `[out, in]`, bias `[out]` (optional) |
/// | `add`, `sub`, `mul`, `div` | a, b (NumPy broadcasting) |
/// | `concat` | the parts |
/// | every other op | x |
package enum TracedOp: Equatable, Sendable {
    case conv2d(stride: [Int], padding: [Int], dilation: [Int], groups: Int, fusedReLU: Bool)
    case batchNorm(eps: Float, fusedReLU: Bool)
    case linear
    case relu
    case clamp(min: Float, max: Float)
    case add, sub, mul, div
    case maxPool2d(kernel: [Int], stride: [Int], padding: [Int])
    /// Average pooling with padding counted (PyTorch's default `count_include_pad=True`).
    case avgPool2d(kernel: [Int], stride: [Int], padding: [Int])
    case adaptiveAvgPool2d(size: [Int])
    /// The input's values in a new shape (`shape` as traced, the batch dimension included).
    case reshape(shape: [Int])
    case permute(order: [Int])
    case concat(axis: Int)
    case slice(axis: Int, start: Int, end: Int)
    case mean(axes: [Int], keepDims: Bool)
}

/// One recorded op application: `output = op(inputs)`.
package struct TracedNode {
    package let op: TracedOp
    package let inputs: [Tensor]
    package let output: Tensor
}

/// The ops a forward pass applies, recorded in order (as `torch.jit.trace` records them), for
/// exporters. While `record` runs its body on a thread, every op of the table in `TracedOp` that the
/// body calls on that thread (not the ops it is built from) is appended as a node; any other op
/// that reads a traced value is named in `unsupported`, so that an exporter refuses the graph
/// instead of baking a value of the traced batch into it as a constant.
///
/// Tensors are told apart by identity; the trace keeps every tensor it saw alive, so that no
/// identity is reused while it records.
package final class GraphTrace {
    package private(set) var nodes: [TracedNode] = []
    /// Names of ops that read a traced value but have no entry in `TracedOp`, in order of first use.
    package private(set) var unsupported: [String] = []
    private var traced: Set<ObjectIdentifier> = []
    private var inputs: [Tensor] = []
    /// How many recorded ops are running; only the outermost one is appended.
    fileprivate var depth = 0

    private init() {}

    /// Runs `body(input)` and returns its result with the trace of the ops it applied to `input`
    /// and to what was computed from it.
    package static func record<T>(input: Tensor, _ body: (Tensor) throws -> T) rethrows -> (result: T, trace: GraphTrace) {
        let trace = GraphTrace()
        trace.inputs = [input]
        trace.traced.insert(ObjectIdentifier(input))
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passUnretained(trace).toOpaque())
        defer { pthread_setspecific(key, previous) }
        return (try body(input), trace)
    }

    /// Whether `tensor` is the traced input or the output of a recorded node.
    package func isTraced(_ tensor: Tensor) -> Bool { traced.contains(ObjectIdentifier(tensor)) }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "GraphTrace: pthread_key_create failed (\(status))")
        return key
    }()

    /// The trace recording on the current thread, if any.
    static var current: GraphTrace? {
        pthread_getspecific(key).map { Unmanaged<GraphTrace>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Whether a trace is recording on the current thread (modules then take their plain path, not
    /// a fused inference one that the trace would not see as its parts).
    package static var isRecording: Bool { pthread_getspecific(key) != nil }

    fileprivate func append(_ op: TracedOp, _ inputs: [Tensor], _ output: Tensor) {
        // An op that returned one of its inputs (a reshape to the same shape) is no node.
        guard !inputs.contains(where: { $0 === output }) else { return }
        nodes.append(TracedNode(op: op, inputs: inputs, output: output))
        traced.insert(ObjectIdentifier(output))
    }

    /// Called for every op the engine computes while tracing: an op outside the table that reads a
    /// traced value is unsupported.
    fileprivate func noteEngineOp(_ name: String, inputs: [Tensor]) {
        guard depth == 0, inputs.contains(where: isTraced), !unsupported.contains(name) else { return }
        unsupported.append(name)
    }
}

extension Tensor {
    /// `compute()`, recorded as one `op` of `inputs` when a trace records on this thread.
    static func traced(_ op: @autoclosure () -> TracedOp, _ inputs: @autoclosure () -> [Tensor], _ compute: () -> Tensor) -> Tensor {
        guard let trace = GraphTrace.current else { return compute() }
        trace.depth += 1
        let output = compute()
        trace.depth -= 1
        if trace.depth == 0 { trace.append(op(), inputs(), output) }
        return output
    }

    /// Tells a recording trace that the engine computed the op `name` of `inputs`.
    static func noteTracedEngineOp(_ name: String, inputs: [Tensor]) {
        GraphTrace.current?.noteEngineOp(name, inputs: inputs)
    }
}
