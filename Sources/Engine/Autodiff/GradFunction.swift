import Synchronization

/// The backward rule of one recorded op application.
///
/// A node holds what PyTorch's autograd nodes hold, and no more: an edge to each input (the node
/// that computed it, or the leaf itself; never a recorded input's values), the rule, with whatever
/// values it captured because its formula reads them, and the output's values when the rule reads
/// those (`BackwardRule.readsOutput`). An intermediate tensor no rule reads is freed as soon as
/// the forward pass drops it, even while its graph lives on (a second-order graph keeps only what
/// its derivatives need).
///
/// The rule returns one gradient per input (nil where `needed` is false or the input gets no
/// gradient). Every rule is an entry of `Derivatives`, written with differentiable `Tensor` ops
/// only: when the backward pass records a graph, its results are differentiated again. Only the
/// Engine records ops.
package final class GradFunction {
    package let name: String
    /// Creation order: a node is always newer than the nodes of its inputs, so running nodes
    /// newest first is a topological order of any graph (PyTorch's `sequence_nr`).
    let sequence: Int
    package private(set) var inputs: [GraphEdge]
    private(set) var rule: BackwardRule
    /// The output's values, kept when the rule reads them (cut from the graph: the node is the
    /// output's own, which `output()` re-attaches).
    private var savedOutput: Tensor?
    /// True once a backward pass that did not retain the graph went through this node.
    package private(set) var isReleased = false

    init(name: String, inputs: [Tensor], rule: BackwardRule) {
        self.name = name
        sequence = GradFunction.created.add(1, ordering: .relaxed).newValue
        self.inputs = inputs.map(GraphEdge.init)
        self.rule = rule
    }

    private static let created = Atomic<Int>(0)

    /// Keeps `output`'s values for the rule when it reads them.
    fileprivate func saveOutputIfRead(_ output: Tensor) {
        if rule.readsOutput { savedOutput = output.detached() }
    }

    /// The output again, as a node of the graph (this node's), when the rule reads it.
    private func output() -> Tensor? {
        savedOutput.map { Tensor(sharing: $0, requiresGrad: true, gradFunction: self) }
    }

    /// Runs the rule for the output gradient `g`.
    func backward(_ g: Tensor, needed: [Bool]) -> [Tensor?] {
        precondition(!rule.readsOutput || savedOutput != nil, "backward of \(name): the output its rule reads was not saved")
        return rule.apply(g, output(), needed)
    }

    /// Drops the edges, the rule (with whatever it captured) and the saved output, so that the
    /// tensors only this node kept alive can be freed.
    func release() {
        inputs = []
        rule = BackwardRule { _, _ in [] }
        savedOutput = nil
        isReleased = true
    }
}

/// A derivative formula: from the gradient `g` of an op's output and which of its inputs need a
/// gradient (`needed`), one gradient per input. A rule that reads the op's output (exp, ReLU's
/// mask, softmax) says so, and its node keeps the output's values for it.
package struct BackwardRule {
    let readsOutput: Bool
    let apply: (_ gradOutput: Tensor, _ output: Tensor?, _ needed: [Bool]) -> [Tensor?]

    /// A rule reading only the output gradient (and what it captured).
    init(_ rule: @escaping (_ gradOutput: Tensor, _ needed: [Bool]) -> [Tensor?]) {
        readsOutput = false
        apply = { g, _, needed in rule(g, needed) }
    }

    /// A rule that also reads the op's output.
    static func readingOutput(_ rule: @escaping (_ gradOutput: Tensor, _ output: Tensor, _ needed: [Bool]) -> [Tensor?]) -> BackwardRule {
        BackwardRule(readsOutput: true) { g, out, needed in rule(g, out!, needed) }
    }

    private init(readsOutput: Bool, apply: @escaping (Tensor, Tensor?, [Bool]) -> [Tensor?]) {
        self.readsOutput = readsOutput
        self.apply = apply
    }
}

/// A node's link to one of its inputs: the node that computed it, or the leaf tensor itself when
/// it requires gradients. A recorded input's values are not held (rules capture what they read).
package struct GraphEdge {
    /// The node that computed the input, when it was recorded.
    package let node: GradFunction?
    /// The input itself, when it is a leaf that requires gradients.
    package let leaf: Tensor?
    package let shape: [Int]

    package init(_ tensor: Tensor) {
        node = tensor.gradFunction
        leaf = tensor.gradFunction == nil && tensor.requiresGrad ? tensor : nil
        shape = tensor.shape
    }

    /// The input's identity in a backward pass: its node, or the leaf tensor (nil for a constant).
    var key: ObjectIdentifier? {
        if let node { return ObjectIdentifier(node) }
        return leaf.map(ObjectIdentifier.init)
    }
}

extension Tensor {
    /// This tensor's identity in a backward pass: the node that computed it, or the tensor itself
    /// (a leaf or a constant). Every tensor made from a node's saved output shares the node's.
    var gradientKey: ObjectIdentifier { gradFunction.map(ObjectIdentifier.init) ?? ObjectIdentifier(self) }
}

extension Tensor {
    /// Wraps freshly computed storage as the output of an op, recording `backward` when recording is
    /// on and some input requires gradients.
    static func recorded(_ name: String, storage: TensorStorage, shape: [Int], inputs: [Tensor],
                         backward: BackwardRule) -> Tensor {
        noteTracedEngineOp(name, inputs: inputs)
        guard GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) else { return Tensor(storage: storage, shape: shape) }
        let fn = GradFunction(name: name, inputs: inputs, rule: backward)
        let output = Tensor(storage: storage, shape: shape, gradFunction: fn)
        fn.saveOutputIfRead(output)
        return output
    }

    /// As `recorded(_:storage:shape:inputs:backward:)`, for values laid out in `format`.
    static func recorded(_ name: String, storage: TensorStorage, format: DNNLFormat, inputs: [Tensor],
                         backward: BackwardRule) -> Tensor {
        noteTracedEngineOp(name, inputs: inputs)
        guard GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) else { return Tensor(storage: storage, format: format) }
        let fn = GradFunction(name: name, inputs: inputs, rule: backward)
        let output = Tensor(storage: storage, format: format, gradFunction: fn)
        fn.saveOutputIfRead(output)
        return output
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
                                        direct: ((_ gradOutput: Tensor, _ needed: [Bool]) -> [Tensor?])? = nil,
                                        composite: @escaping ([Tensor]) -> Tensor) -> Tensor {
        guard GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) else { return value.detached() }
        let fn = GradFunction(name: name, inputs: inputs, rule: BackwardRule { upstream, needed in
            let record = GradMode.isEnabled
            if !record, let direct { return direct(upstream, needed) }
            // Fresh nodes standing for the inputs, so that the local derivative treats them as
            // independent (an input's own history may pass through another input). When recording,
            // they are identities of the inputs, so the result stays differentiable in them.
            let proxies = inputs.map { x in
                record ? Tensor(sharing: x, requiresGrad: true, gradFunction: GradFunction(name: "identity", inputs: [x], rule: BackwardRule { g, _ in [g] }))
                       : x.detached().requiringGrad()
            }
            let out = GradMode.with(enabled: true) { composite(proxies) }
            let wanted = proxies.indices.filter { needed[$0] }
            let grads = gradients(of: out, seed: upstream, wrt: wanted.map { proxies[$0] }, createGraph: record)
            var result = [Tensor?](repeating: nil, count: inputs.count)
            for (i, g) in zip(wanted, grads) { result[i] = g }
            return result
        })
        return Tensor(sharing: value, requiresGrad: true, gradFunction: fn)
    }
}
