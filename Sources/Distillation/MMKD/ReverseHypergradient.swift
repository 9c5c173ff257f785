import Engine
import NN

/// The hypergradient of MMKD's meta step (DESIGN.md §3, step 9c–e): look-ahead SGD steps on the
/// learner, then Reverse-HG replay of them, newest first, with the adjoint (a0, a1) of (parameters,
/// momentum) started at the validation gradient: per step, h = ∂/∂θ⟨g_j, −lr·a0 + a1⟩ and its
/// ∂/∂φ accumulated into the meta gradients; a0 ← a0·(1 − lr·wd) + wd·a1 + h,
/// a1 ← m·a1 − lr·m·a0 (the official update, which ignores Nesterov in the adjoint).
///
/// `exact` differentiates ⟨g_j, v⟩ through g_j's recorded graph (`create_graph`): with
/// `keepGraphs` the look-ahead steps record it and the replay reuses it (no recomputation, but
/// every step's double graph stays alive: about 3× the memory of one); otherwise the replay
/// recomputes step j's forward and gradient at its saved parameters, as the official code does
/// (except for the newest step, whose graph the look-ahead keeps: it is replayed first)
/// (train-mode BN uses batch statistics, so the recomputation is exact). `firstOrder` drops h and estimates
/// the mixed term by central differences, ∂/∂φ L_j(θ ± ε·v) with ε = 0.01/‖v‖ (DARTS), which needs
/// two student forwards per step and no backward through the student.
///
/// The learner's parameters and the optimiser state change during the look-ahead; callers snapshot
/// and roll back (MMKD's step 9g).
///
/// Data-parallel (`Replicas.current`): every gradient of a replicated quantity (parameters, meta
/// parameters) is averaged over the processes (`Replicas.averagedGradients`, recorded when the graph is), so
/// that g_j, the adjoints, h and the meta gradients are the whole batch's, exact to second order.
public struct ReverseHypergradient {
    /// One look-ahead step: the loss at the learner's current parameters, and whether it depends on
    /// the meta parameters at all (the cross-entropy step does not).
    public struct Step {
        public var loss: () -> Tensor
        public var dependsOnMeta: Bool
        public init(dependsOnMeta: Bool, loss: @escaping () -> Tensor) { self.loss = loss; self.dependsOnMeta = dependsOnMeta }
    }

    public let mode: HypergradientMode
    public let keepGraphs: Bool

    public init(mode: HypergradientMode, keepGraphs: Bool = false) { self.mode = mode; self.keepGraphs = keepGraphs }

    /// Runs `steps` as look-ahead SGD steps of `optimizer` on `learner`, then `validation` at the
    /// resulting parameters, and returns ∂validation/∂metaParameters through the steps.
    public func metaGradients(learner: Module, optimizer: OptimizerDriver<SGD>, steps: [Step], validation: () -> Tensor,
                              metaParameters: [Tensor]) -> [Tensor] {
        var driver = optimizer
        let names = learner.namedParameters.map(\.0)
        let sgd = driver.optimizer
        let (lr, m, wd) = (sgd.learningRate, sgd.momentum, sgd.weightDecay)
        var records: [(parameters: [Tensor], gradients: [Tensor])] = []
        for (index, step) in steps.enumerated() {
            let parameters = learner.parameters
            // The newest step is replayed first: its graph is kept even when recomputing, at no
            // cost in peak memory (the replay would rebuild the same graph right away).
            let keep = mode == .exact && (keepGraphs || index == steps.count - 1)
            let g = Replicas.averagedGradients(of: step.loss(), wrt: parameters, createGraph: keep, retainGraph: keep)
            records.append((parameters, keep ? g : []))
            driver.update(learner, gradients: Dictionary(uniqueKeysWithValues: zip(names, g.map { $0.detached() })))
        }
        var a0 = Replicas.averagedGradients(of: validation(), wrt: learner.parameters, retainGraph: false)
        var a1 = a0.map { Tensor.zeros($0.shape) }
        var meta = metaParameters.map { Tensor.zeros($0.shape) }

        for index in records.indices.reversed() {
            let record = records[index]
            records[index] = ([], [])  // the step's graph dies with this iteration
            let v = zip(a0, a1).map { $1 - $0 * lr }
            var h: [Tensor]
            switch mode {
            case .exact:
                var g = record.gradients
                if g.isEmpty {
                    learner.update(parameters: Dictionary(uniqueKeysWithValues: zip(names, record.parameters)))
                    g = Replicas.averagedGradients(of: steps[index].loss(), wrt: record.parameters, createGraph: true)
                }
                let x = zip(g, v).map { ($0 * $1).sum() }.reduce(Tensor(scalar: 0), +)
                // The oldest step's h would only update an adjoint nobody reads: ask for ∂X/∂φ alone.
                let wantH = index > 0
                let all = Replicas.averagedGradients(of: x, wrt: (wantH ? record.parameters : []) + (steps[index].dependsOnMeta ? metaParameters : []), retainGraph: false)
                h = wantH ? Array(all.prefix(record.parameters.count)) : []
                if steps[index].dependsOnMeta { meta = zip(meta, all.dropFirst(wantH ? record.parameters.count : 0)).map { $0 + $1 } }
            case .firstOrder:
                h = []
                if steps[index].dependsOnMeta {
                    let norm = v.map { $0.square().sum().item }.reduce(0, +).squareRoot()
                    if norm > 0 {
                        let eps = 0.01 / norm
                        func metaGradient(at sign: Float) -> [Tensor] {
                            learner.update(parameters: Dictionary(uniqueKeysWithValues: zip(names, zip(record.parameters, v).map { ($0 + $1 * (sign * eps)).detached() })))
                            return Replicas.averagedGradients(of: steps[index].loss(), wrt: metaParameters, retainGraph: false)
                        }
                        let plus = metaGradient(at: 1), minus = metaGradient(at: -1)
                        meta = zip(meta, zip(plus, minus)).map { $0 + ($1.0 - $1.1) / (2 * eps) }
                    }
                }
            }
            let oldA0 = a0
            a0 = a0.indices.map { i in
                let decayed = oldA0[i] * (1 - lr * wd) + a1[i] * wd
                return h.isEmpty ? decayed : decayed + h[i]
            }
            a1 = a1.indices.map { i in a1[i] * m - oldA0[i] * (lr * m) }
        }
        return meta.map { $0.detached() }
    }
}
