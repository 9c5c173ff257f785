/// The backward rule of one recorded op application.
///
/// `backward(gradOutput, output, needed)` returns one gradient per input (nil where `needed` is false
/// or the input gets no gradient). Every rule is an entry of `Derivatives`, written with
/// differentiable `Tensor` ops only: when the backward pass records a graph, its results are
/// differentiated again. Only the Engine records ops.
package final class GradFunction {
    package typealias Backward = (_ gradOutput: Tensor, _ output: Tensor, _ needed: [Bool]) -> [Tensor?]

    package let name: String
    package private(set) var inputs: [Tensor]
    private(set) var backward: Backward
    /// True once a backward pass that did not retain the graph went through this node.
    package private(set) var isReleased = false

    init(name: String, inputs: [Tensor], backward: @escaping Backward) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }

    /// Drops the inputs and the backward rule (with whatever it captured), so that the tensors
    /// only this node kept alive can be freed.
    func release() {
        inputs = []
        backward = { _, _, _ in [] }
        isReleased = true
    }
}

extension Tensor {
    /// Wraps freshly computed storage as the output of an op, recording `backward` when recording is
    /// on and some input requires gradients.
    static func recorded(_ name: String, storage: TensorStorage, shape: [Int], inputs: [Tensor],
                                backward: @escaping GradFunction.Backward) -> Tensor {
        noteTracedEngineOp(name, inputs: inputs)
        if GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            return Tensor(storage: storage, shape: shape,
                          gradFunction: GradFunction(name: name, inputs: inputs, backward: backward))
        }
        return Tensor(storage: storage, shape: shape)
    }

    /// As `recorded(_:storage:shape:inputs:backward:)`, for values laid out in `format`.
    static func recorded(_ name: String, storage: TensorStorage, format: DNNLFormat, inputs: [Tensor],
                         backward: @escaping GradFunction.Backward) -> Tensor {
        noteTracedEngineOp(name, inputs: inputs)
        let record = GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad })
        return Tensor(storage: storage, format: format,
                      gradFunction: record ? GradFunction(name: name, inputs: inputs, backward: backward) : nil)
    }
}

extension Tensor {
    /// `value`, computed by a fast kernel, recorded as the op `composite(inputs)`: its derivative
    /// is the derivative of the composite (differentiable ops), evaluated only when the backward
    /// pass reaches it. The graph keeps `inputs` but none of the composite's intermediates, which
    /// is what makes second-order graphs through batch norm affordable. `composite(inputs)` must
    /// equal `value`.
    ///
    /// `direct`, when given, evaluates the same derivative with fused kernels for a pass that is
    /// not recorded (the common last pass: a second-order gradient that is not differentiated
    /// again); a recorded pass always goes through the composite, so every order stays exact.
    static func withCompositeDerivative(_ name: String, value: Tensor, inputs: [Tensor],
                                        direct: GradFunction.Backward? = nil,
                                        composite: @escaping ([Tensor]) -> Tensor) -> Tensor {
        guard GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) else { return value.detached() }
        let fn = GradFunction(name: name, inputs: inputs) { upstream, output, needed in
            let record = GradMode.isEnabled
            if !record, let direct { return direct(upstream, output, needed) }
            // Fresh nodes standing for the inputs, so that the local derivative treats them as
            // independent (an input's own history may pass through another input). When recording,
            // they are identities of the inputs, so the result stays differentiable in them.
            let proxies = inputs.map { x in
                record ? Tensor(sharing: x, requiresGrad: true, gradFunction: GradFunction(name: "identity", inputs: [x]) { g, _, _ in [g] })
                       : x.detached().requiringGrad()
            }
            let out = GradMode.with(enabled: true) { composite(proxies) }
            let wanted = proxies.indices.filter { needed[$0] }
            let grads = gradients(of: out, seed: upstream, wrt: wanted.map { proxies[$0] }, createGraph: record)
            var result = [Tensor?](repeating: nil, count: inputs.count)
            for (i, g) in zip(wanted, grads) { result[i] = g }
            return result
        }
        return Tensor(sharing: value, requiresGrad: true, gradFunction: fn)
    }
}
