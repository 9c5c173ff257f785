import Engine

/// AEKD (Du et al. 2020): one weight per teacher from the batch-averaged gradients of its loss
/// w.r.t. the student's logits (`logits`) and, for `feature`, also w.r.t. the penultimate map
/// (L2-normalised, through per-teacher regressors), by the one-class SVM dual
/// (`TeacherWeighting.agreement`, solved exactly).
public struct AgreementWeightedTeachers: DistillationMethod {
    public enum Target: Sendable { case logits, feature }
    public let target: Target

    public init(target: Target) { self.target = target }
    public var name: String { target == .logits ? "aekd-logits" : "aekd-feature" }
    public var summary: String {
        target == .logits ? "agreement-based teacher weights from logit gradients (one-class SVM)"
            : "agreement-based teacher weights from logit and feature gradients (β 100)"
    }
    public var defaultBeta: Float { target == .feature ? 100 : 0 }

    public func terms(_ batch: MethodBatch) -> MethodTerms {
        let (k, n) = (batch.k, batch.labels.count)
        let klMeans = (0..<k).map { batch.klPerSample.slice(axis: 1, $0..<($0 + 1)).mean() }
        let grads = klMeans.map { wholeBatchMean(gradients(of: $0, wrt: [batch.studentLogits])[0].mean(axes: [0])) }
        let w = TeacherWeighting.agreement(gradients: grads, c: batch.hyper.svmC)
        var terms = MethodTerms(logitTerm: zip(klMeans, w).map { $0 * $1 }.reduce(Tensor(scalar: 0), +),
                                logitWeights: Tensor(w, shape: [1, k]).expanded(to: [n, k]))
        if target == .feature && batch.beta > 0 {
            let penultimate = batch.penultimate
            let mse = batch.featureErrors(student: penultimate, teacherMaps: batch.teacherOutputs.map(\.penultimate))
            let mseMeans = (0..<k).map { mse.slice(axis: 1, $0..<($0 + 1)).mean() }
            let fgrads = mseMeans.map { m -> Tensor in
                let g = wholeBatchMean(gradients(of: m, wrt: [penultimate])[0].mean(axes: [0]))
                return g / (g.square().sum() + 1e-12).sqrt()
            }
            let wf = TeacherWeighting.agreement(gradients: fgrads, c: batch.hyper.svmC)
            terms.featureTerm = zip(mseMeans, wf).map { $0 * $1 }.reduce(Tensor(scalar: 0), +)
            terms.featureWeights = Tensor(wf, shape: [1, k]).expanded(to: [n, k])
        }
        return terms
    }

    /// `g`, this process's mean over its samples of the gradient of its slice's mean loss, as the
    /// whole batch's: in a data-parallel step of R equal slices, the whole batch's loss has 1/R of
    /// each slice's gradient per sample and the mean runs over R times the samples, so Σ_ranks g / R².
    func wholeBatchMean(_ g: Tensor) -> Tensor {
        guard let group = Replicas.current else { return g }
        return g.summedAcrossReplicas(group).scaled(by: 1 / Float(group.size * group.size))
    }
}
