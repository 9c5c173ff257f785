import Engine
import Models
import NN

/// The training loss of every distillation method (DESIGN.md §3–4) for one batch, with the teacher
/// weights it used. Teachers' outputs come in precomputed (they are frozen; MMKD's buffer caches them).
public final class MultiTeacherObjective {
    public let hyper: DistillationHyperparameters
    public let learner: DistillationLearner
    public let teachers: [FrozenTeacher]
    public let metaNetworks: MMKDMetaNetworks?

    /// Which loss to build: the regular step's (in `epoch`), MMKD's look-ahead matching loss
    /// α·L_div + β·L_feat, or cross-entropy alone (MMKD's last look-ahead step).
    public enum Part: Equatable { case full(epoch: Int), matching, crossEntropy }

    public struct Terms {
        public var total: Tensor
        public var crossEntropy: Tensor
        public var logitTerm: Tensor?
        public var featureTerm: Tensor?
        /// Per-sample teacher weights `[B, K]` used for the logit and feature terms (detached).
        public var logitWeights: Tensor?
        public var featureWeights: Tensor?
        public var studentLogits: Tensor
    }

    public init(hyper: DistillationHyperparameters, learner: DistillationLearner, teachers: [FrozenTeacher], metaNetworks: MMKDMetaNetworks?) {
        if let problem = hyper.method.teacherCountProblem(teachers.count) { preconditionFailure(problem) }
        precondition(hyper.method != .mmkd || metaNetworks != nil, "mmkd needs its meta-weight networks")
        precondition(hyper.regressedMap == nil || learner.regressors.count == teachers.count, "one regressor per teacher")
        self.hyper = hyper; self.learner = learner; self.teachers = teachers; self.metaNetworks = metaNetworks
    }

    var k: Int { teachers.count }

    /// The loss terms of the batch `images` with `labels`, given each teacher's outputs for it;
    /// `indices` (training-set positions) are needed by CRD's memory banks.
    public func terms(images: Tensor, labels: [Int], teacherOutputs t: [TeacherOutputs], part: Part, indices: [Int]? = nil) -> Terms {
        precondition(t.count == k, "\(t.count) teacher outputs for \(k) teachers")
        let (features, zs) = learner.student.features(images)
        let b = Float(labels.count)
        let ce = crossEntropy(zs, labels: labels)
        if part == .crossEntropy {
            return Terms(total: ce, crossEntropy: ce, studentLogits: zs)
        }
        var epoch = 0
        if case let .full(e) = part { epoch = e }
        var beta = hyper.beta
        // The official baselines skip the feature term in their first epoch.
        if hyper.compatOfficial && hyper.method != .mmkd && epoch == 0 { beta = 0 }

        let tau = hyper.temperature
        let klPerSample = Tensor.concat(t.map { distillationKL(student: zs, teacher: $0.logits, temperature: tau, reduction: .none).unsqueezed(1) }, axis: 1)
        var logitWeights: Tensor? = nil, featureWeights: Tensor? = nil
        var div: Tensor
        var feat: Tensor? = nil
        let penultimate = features[features.count - 2]

        /// Per-sample MSE `[B, K]` of the regressed student map against each teacher's map.
        func featureErrors(student map: Tensor, teacherMaps: [Tensor], projected: ((Int, Tensor) -> Void)? = nil) -> Tensor {
            Tensor.concat(teacherMaps.enumerated().map { i, tm in
                let (s, tt) = Tensor.matchingSpatialSize(student: map, teacher: tm)
                let p = learner.regressors[i](s)
                projected?(i, p)
                return meanSquaredError(p, tt, reduction: .none).unsqueezed(1)
            }, axis: 1)
        }
        let uniform = Tensor.full([labels.count, k], 1 / Float(k))

        switch hyper.method {
        case .kd, .aver:
            div = klPerSample.sum() / (b * Float(k))
            logitWeights = uniform
            if hyper.method == .aver && beta > 0 {
                feat = featureErrors(student: penultimate, teacherMaps: t.map(\.penultimate)).sum() / (b * Float(k))
                featureWeights = uniform
            }
        case .ebkd:
            let w = TeacherWeighting.entropy(teacherLogits: t.map(\.logits))
            div = (w * klPerSample).sum() / (b * Float(k))
            logitWeights = w
        case .camkd:
            let w = TeacherWeighting.confidence(logits: t.map(\.logits), labels: labels)
            div = (w * klPerSample).sum() / (b * Float(k))
            logitWeights = w
            if beta > 0 {
                var headLogits: [Tensor] = Array(repeating: zs, count: k)
                let mse = featureErrors(student: penultimate, teacherMaps: t.map(\.penultimate)) { i, p in
                    headLogits[i] = self.teachers[i].model.classify(penultimate: p)
                }
                let wf = TeacherWeighting.confidence(logits: headLogits, labels: labels)  // not detached, as CA-MKD
                feat = (wf * mse).sum() / (b * Float(k))
                featureWeights = wf.detached()
            }
        case .aekdLogits, .aekdFeature:
            let klMeans = (0..<k).map { klPerSample.slice(axis: 1, $0..<($0 + 1)).mean() }
            let grads = klMeans.map { gradients(of: $0, wrt: [zs])[0].mean(axes: [0]) }
            let w = TeacherWeighting.agreement(gradients: grads, c: hyper.svmC)
            div = zip(klMeans, w).map { $0 * $1 }.reduce(Tensor(scalar: 0), +)
            logitWeights = Tensor(w, shape: [1, k]).expanded(to: [labels.count, k])
            if hyper.method == .aekdFeature && beta > 0 {
                let mse = featureErrors(student: penultimate, teacherMaps: t.map(\.penultimate))
                let mseMeans = (0..<k).map { mse.slice(axis: 1, $0..<($0 + 1)).mean() }
                let fgrads = mseMeans.map { m -> Tensor in
                    let g = gradients(of: m, wrt: [penultimate])[0].mean(axes: [0])
                    return g / (g.square().sum() + 1e-12).sqrt()
                }
                let wf = TeacherWeighting.agreement(gradients: fgrads, c: hyper.svmC)
                feat = zip(mseMeans, wf).map { $0 * $1 }.reduce(Tensor(scalar: 0), +)
                featureWeights = Tensor(wf, shape: [1, k]).expanded(to: [labels.count, k])
            }
        case .at, .vid, .crd, .semckd, .srrl:
            div = klPerSample.sum() / b
            logitWeights = uniform
            if beta > 0 {
                feat = singleTeacherFeatureTerm(features: features, teacher: t[0], indices: indices)
                featureWeights = uniform
            }
        case .fitnet, .fitnetMKD:
            div = klPerSample.sum() / (b * Float(k))
            logitWeights = uniform
            if beta > 0 {
                let mse = featureErrors(student: features[2], teacherMaps: t.map(\.hint))
                feat = mse.sum() / (b * Float(k))
                if hyper.compatOfficial { feat = feat!.detached() }  // the official hint loss carries no gradient
                featureWeights = uniform
            }
        case .mmkd:
            let nets = metaNetworks!
            let wl = hyper.learnLogitWeights ? nets.logit.weights(teacherInputs: t.map(\.logits), studentInput: zs) : uniform
            div = (wl * klPerSample).sum() / b
            logitWeights = wl.detached()
            if beta > 0 {
                let mse = featureErrors(student: penultimate, teacherMaps: t.map(\.penultimate))
                let normalised = !hyper.compatOfficial
                let wf = hyper.learnFeatureWeights
                    ? nets.feature.weights(teacherInputs: t.map { $0.penultimate.batchSimilarity(normalised: normalised) },
                                           studentInput: penultimate.detached().batchSimilarity(normalised: normalised))
                    : uniform
                feat = (wf * mse).sum() / b
                featureWeights = wf.detached()
            }
        }

        let featureTerm = feat.map { $0 * beta }
        let total: Tensor
        switch part {
        case .matching:
            total = div * hyper.alpha + (featureTerm ?? Tensor(scalar: 0))
        default:
            let officialMMKD = hyper.compatOfficial && hyper.method == .mmkd
            let (gamma, alpha) = officialMMKD ? (Float(1), Float(1)) : (hyper.gamma, hyper.alpha)
            total = ce * gamma + div * alpha + (featureTerm ?? Tensor(scalar: 0))
        }
        return Terms(total: total, crossEntropy: ce, logitTerm: div, featureTerm: feat, logitWeights: logitWeights,
                     featureWeights: featureWeights, studentLogits: zs)
    }

    /// The own term of the single-teacher feature baselines (Table II), against the one teacher.
    func singleTeacherFeatureTerm(features: [Tensor], teacher t: TeacherOutputs, indices: [Int]?) -> Tensor {
        let penultimate = features[features.count - 2]
        switch hyper.method {
        case .at, .vid:
            let pairs = Tensor.stagePairs(student: features, teacher: t.stages)
            return pairs.enumerated().map { i, p -> Tensor in
                if hyper.method == .vid { return learner.vid[i].negativeLogLikelihood(student: p.student, teacher: p.teacher) }
                let (s, tt) = Tensor.matchingSpatialSize(student: p.student, teacher: p.teacher)
                return (s.attentionMap() - tt.attentionMap()).square().mean()
            }.reduce(Tensor(scalar: 0), +)
        case .crd:
            guard let indices else { preconditionFailure("CRD needs the batch's training-set positions") }
            let pooled = { (f: Tensor) in f.adaptiveAvgPool2d((1, 1)).flattened() }
            return learner.crd!.loss(student: pooled(penultimate), teacher: pooled(t.penultimate), indices: indices)
        case .semckd:
            precondition(!t.stages.isEmpty, "SemCKD needs the teacher's stage maps")
            return learner.semckd!.loss(student: Array(features[1..<(features.count - 1)]), teacher: t.stages).loss
        case .srrl:
            // The pooled student feature as a 1×1 map through the connector, against the teacher's
            // pooled feature (FM) and, through the teacher's classifier, its logits (SR).
            let projected = learner.regressors[0](penultimate.adaptiveAvgPool2d((1, 1)))
            let fm = meanSquaredError(projected, t.penultimate.adaptiveAvgPool2d((1, 1)))
            return fm + meanSquaredError(teachers[0].model.classify(penultimate: projected), t.logits)
        default:
            preconditionFailure("\(hyper.method.rawValue) is not a single-teacher feature baseline")
        }
    }
}
