/// Reverse-mode gradients of a scalar `output` with respect to each tensor of `inputs`.
///
/// With `createGraph` the backward pass is itself recorded, so the returned gradients can be
/// differentiated again (PyTorch's `create_graph=True`); without it, the results are constants and
/// the pass costs a plain backward. Only nodes on a path from `inputs` to `output` are visited, and
/// each backward rule is told which of its inputs need a gradient. An input that does not influence
/// `output` gets zeros.
///
/// With `retainGraph: false` (PyTorch's `retain_graph=False`) each node of the graph is released
/// as soon as the pass has gone through it, so activations the graph alone kept alive are freed
/// during the pass rather than after it; another pass through a released node is an error. Not
/// with `createGraph` (the new graph runs through the old one).
public func gradients(of output: Tensor, wrt inputs: [Tensor], createGraph: Bool = false, retainGraph: Bool = true) -> [Tensor] {
    precondition(output.count == 1, "gradients(of:): output must be a scalar, got shape \(output.shape)")
    return gradients(of: output, seed: Tensor.ones(output.shape), wrt: inputs, createGraph: createGraph, retainGraph: retainGraph)
}

/// Vector–Jacobian product: gradients of `⟨seed, output⟩` with respect to `inputs`.
public func gradients(of output: Tensor, seed: Tensor, wrt inputs: [Tensor], createGraph: Bool = false, retainGraph: Bool = true) -> [Tensor] {
    gradients(of: output, seed: seed, wrt: inputs, createGraph: createGraph, retainGraph: retainGraph, observer: nil)
}

/// Follows a backward pass (`gradients(of:seed:wrt:…:observer:)`) as it goes.
package protocol GradientObserver: AnyObject {
    /// Input `index`'s gradient is complete: nothing later in the pass adds to it. Called once per
    /// input, in the order the pass completes them (the same on every process for the same graph).
    func gradientIsFinal(index: Int, gradient: Tensor)
    /// The pass finished one node's backward rule.
    func nodeFinished()
}

/// As `gradients(of:seed:wrt:createGraph:retainGraph:)`, telling `observer` of each input's
/// gradient as soon as it is complete (data-parallel runs start summing it over the processes
/// while the pass goes on).
package func gradients(of output: Tensor, seed: Tensor, wrt inputs: [Tensor], createGraph: Bool, retainGraph: Bool,
                       observer: GradientObserver?) -> [Tensor] {
    precondition(seed.shape == output.shape, "gradients: seed shape \(seed.shape) differs from output \(output.shape)")
    precondition(retainGraph || !createGraph, "gradients: createGraph needs the graph retained")
    let targets = Set(inputs.map(\.gradientKey))
    // The output is an entry of the walk without a key of its own when it is a constant.
    let outputKey = output.gradientKey

    // Post-order walk over the graph's nodes and leaves: `order` lists every one reached before
    // those computed from it; `relevant` marks those that lie on a path to some requested input.
    var order: [GraphEdge?] = []
    var relevant: [ObjectIdentifier: Bool] = [:]
    var stack: [(GraphEdge, Int)] = [(GraphEdge(output), 0)]
    var visited: Set<ObjectIdentifier> = [outputKey]
    func isRelevant(_ edge: GraphEdge) -> Bool { edge.key.map { relevant[$0] == true } ?? false }
    while let (edge, next) = stack.popLast() {
        precondition(edge.node?.isReleased != true,
                     "gradients: the graph through \(edge.node!.name) was released by an earlier pass (retainGraph: false)")
        let parents = edge.node?.inputs ?? []
        if next < parents.count {
            stack.append((edge, next + 1))
            let parent = parents[next]
            if let key = parent.key, visited.insert(key).inserted {
                stack.append((parent, 0))
            }
        } else {
            let id = edge.key ?? outputKey
            relevant[id] = targets.contains(id) || parents.contains(where: isRelevant)
            order.append(edge)
        }
    }
    let keys = order.map { $0!.key ?? outputKey }
    var sums = GradientSums(order: order, isRelevant: isRelevant)
    sums.seed(outputKey, seed)

    // For the observer: each input's positions in `inputs` (an input may be passed twice), until reported.
    var unreported: [ObjectIdentifier: [Int]] = observer == nil ? [:] : Dictionary(grouping: inputs.indices) { inputs[$0].gradientKey }
    GradMode.with(enabled: createGraph) {
        for position in GradientSums.schedule(order) {
            let edge = order[position]!
            if !retainGraph { order[position] = nil }
            defer { if !retainGraph { edge.node?.release() } }
            defer { observer?.nodeFinished() }
            let id = keys[position]
            // Every consumer ran before, so this gradient is complete.
            let g = targets.contains(id) ? sums.total(id) : sums.take(id)
            if let observer, let indices = unreported.removeValue(forKey: id) {
                for index in indices { observer.gradientIsFinal(index: index, gradient: g ?? Tensor.zeros(edge.shape)) }
            }
            defer { sums.finished(position) }
            guard let fn = edge.node, relevant[id] == true, let g else { continue }
            let needed = fn.inputs.map(isRelevant)
            let inputGrads = BackwardProfile.isEnabled ? BackwardProfile.shared.measure(createGraph ? fn.name + "+G" : fn.name) { fn.backward(g, needed: needed) }
                                                       : fn.backward(g, needed: needed)
            precondition(inputGrads.count == fn.inputs.count, "backward of \(fn.name) returned \(inputGrads.count) gradients for \(fn.inputs.count) inputs")
            for (index, (input, grad)) in zip(fn.inputs, inputGrads).enumerated() {
                guard let grad, isRelevant(input) else { continue }
                precondition(grad.shape == input.shape, "backward of \(fn.name) gave gradient shape \(grad.shape) for input \(input.shape)")
                sums.add(grad, from: position, input: index)
            }
        }
    }
    let result = inputs.map { sums.total($0.gradientKey) ?? Tensor.zeros($0.shape) }
    if let observer {
        // Inputs the pass never reached (the output does not depend on them): zeros.
        for index in unreported.values.joined().sorted() { observer.gradientIsFinal(index: index, gradient: result[index]) }
    }
    return result
}
