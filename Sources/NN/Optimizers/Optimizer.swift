import Engine

/// An optimiser is a per-parameter functional step, `(parameter, gradient, state) → (parameter,
/// state)`, written with differentiable tensor ops: under graph recording a step is itself
/// differentiable (look-ahead steps of meta-learning), otherwise it is plain arithmetic.
public protocol Optimizer {
    associatedtype State
    var learningRate: Float { get set }
    /// One update of one parameter; `state` is nil before the first step.
    func step(parameter: Tensor, gradient: Tensor, state: State?) -> (Tensor, State)
}

/// Applies an optimiser to a module's parameters, keeping per-parameter state by name. Its state is
/// a value: copying it is a snapshot.
public struct OptimizerDriver<O: Optimizer> {
    public var optimizer: O
    public var states: [String: O.State] = [:]

    public init(_ optimizer: O) { self.optimizer = optimizer }

    /// Steps every named parameter of `module` that has a gradient and writes the results back
    /// through `update(parameters:)`. With `recordGraph` the step is recorded, so the new parameters
    /// stay differentiable functions of the old ones and of the gradients (look-ahead steps);
    /// otherwise the new parameters are fresh leaves and nothing of the old step is kept alive.
    public mutating func update(_ module: Module, gradients: [String: Tensor], recordGraph: Bool = false) {
        var updated: [String: Tensor] = [:]
        GradMode.with(enabled: recordGraph) {
            for (name, p) in module.namedParameters {
                guard let g = gradients[name] else { continue }
                let (newP, newState) = optimizer.step(parameter: p, gradient: g, state: states[name])
                states[name] = newState
                updated[name] = newP
            }
        }
        module.update(parameters: updated)
    }

    /// Computes gradients of `loss` for every parameter of `module` and steps them; with
    /// `createGraph` the gradients and the step are recorded (a differentiable look-ahead step).
    /// Without it, `loss`'s graph is released on the way (it cannot be differentiated again). In a
    /// data-parallel step (`Replicas.current`), `loss` is this process's slice's and the gradients
    /// are averaged over the processes first (in buckets while the backward pass goes on, unless recorded).
    public mutating func minimize(_ loss: Tensor, of module: Module, createGraph: Bool = false) {
        let named = module.namedParameters
        let grads = Replicas.averagedGradients(of: loss, wrt: named.map(\.1), createGraph: createGraph, retainGraph: createGraph)
        update(module, gradients: Dictionary(uniqueKeysWithValues: zip(named.map(\.0), grads)), recordGraph: createGraph)
    }
}
