import Engine
import NN

/// MMKD's meta step (DESIGN.md §3, step 9): on a hard batch, two look-ahead steps on the matching
/// loss and one on cross-entropy, the Reverse-HG hypergradient of the meta-weight networks, their
/// Adam step, and the rollback of the learner (parameters, BN statistics) and its momentum.
public struct MMKDMetaStep {
    public var adam: OptimizerDriver<Adam>
    public let hypergradient: ReverseHypergradient

    public init(hyper: DistillationHyperparameters) {
        adam = OptimizerDriver(Adam(learningRate: hyper.metaLearningRate, weightDecay: hyper.metaWeightDecay))
        hypergradient = ReverseHypergradient(mode: hyper.hypergradient, keepGraphs: hyper.keepReplayGraphs)
    }

    /// The meta gradients by name for a hard batch (no update, no rollback: see `run`).
    public func metaGradients(objective: MultiTeacherObjective, optimizer: OptimizerDriver<SGD>, images: Tensor, labels: [Int],
                              teacherOutputs: [TeacherOutputs]) -> [String: Tensor] {
        let nets = objective.metaParts!
        let named = nets.namedParameters
        func loss(_ part: MultiTeacherObjective.Part) -> () -> Tensor {
            { objective.terms(images: images, labels: labels, teacherOutputs: teacherOutputs, part: part).total }
        }
        let steps = [ReverseHypergradient.Step(dependsOnMeta: true, loss: loss(.matching)),
                     ReverseHypergradient.Step(dependsOnMeta: true, loss: loss(.matching)),
                     ReverseHypergradient.Step(dependsOnMeta: false, loss: loss(.crossEntropy))]
        let grads = hypergradient.metaGradients(learner: objective.learner, optimizer: optimizer, steps: steps,
                                                validation: loss(.crossEntropy), metaParameters: named.map(\.1))
        return Dictionary(uniqueKeysWithValues: zip(named.map(\.0), grads))
    }

    /// The whole meta step; afterwards the learner is exactly as before (with `--compat official`, its
    /// BN running statistics keep the one extra update of the official code's last replayed pass).
    /// The optimiser's momentum is untouched (the look-ahead works on a copy). Returns the gradients.
    @discardableResult
    public mutating func run(objective: MultiTeacherObjective, optimizer: OptimizerDriver<SGD>, images: Tensor, labels: [Int],
                             teacherOutputs: [TeacherOutputs]) -> [String: Tensor] {
        // The teachers are idle here (their outputs come with the hard samples): their folded and
        // Winograd-transformed weights are rebuilt by the next regular step rather than held
        // through the meta step's peak.
        for teacher in objective.teachers { teacher.model.releaseInferenceCaches() }
        let learner = objective.learner
        let snapshot = learner.snapshot()
        var officialBuffers: [String: Tensor]? = nil
        if objective.hyper.compatOfficial {
            // The official replay ends with a train-mode forward at the snapshot parameters on this batch.
            withoutGrad { _ = objective.terms(images: images, labels: labels, teacherOutputs: teacherOutputs, part: .matching) }
            officialBuffers = Dictionary(uniqueKeysWithValues: learner.namedBuffers)
            learner.restore(snapshot)
        }
        let grads = metaGradients(objective: objective, optimizer: optimizer, images: images, labels: labels, teacherOutputs: teacherOutputs)
        learner.restore(snapshot)
        if let officialBuffers { learner.update(buffers: officialBuffers) }
        adam.update(objective.metaParts!, gradients: grads)
        return grads
    }
}
