/// The backward rule of one recorded op application.
///
/// `backward(gradOutput, output, needed)` returns one gradient per input (nil where `needed` is false
/// or the input gets no gradient). It must be written with differentiable `Tensor` ops only: when the
/// backward pass records a graph, its results are differentiated again.
public final class GradFunction {
    public typealias Backward = (_ gradOutput: Tensor, _ output: Tensor, _ needed: [Bool]) -> [Tensor?]

    public let name: String
    public let inputs: [Tensor]
    let backward: Backward

    init(name: String, inputs: [Tensor], backward: @escaping Backward) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

extension Tensor {
    /// Wraps freshly computed storage as the output of an op, recording `backward` when recording is
    /// on and some input requires gradients.
    public static func recorded(_ name: String, storage: TensorStorage, shape: [Int], inputs: [Tensor],
                                backward: @escaping GradFunction.Backward) -> Tensor {
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            return Tensor(storage: storage, shape: shape,
                          gradFunction: GradFunction(name: name, inputs: inputs, backward: backward))
        }
        return Tensor(storage: storage, shape: shape)
    }

    /// As `recorded(_:storage:shape:inputs:backward:)`, for values laid out in `format`.
    static func recorded(_ name: String, storage: TensorStorage, format: DNNLFormat, inputs: [Tensor],
                         backward: @escaping GradFunction.Backward) -> Tensor {
        let record = GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad })
        return Tensor(storage: storage, format: format,
                      gradFunction: record ? GradFunction(name: name, inputs: inputs, backward: backward) : nil)
    }
}
