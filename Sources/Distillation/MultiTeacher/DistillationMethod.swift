/// A distillation method of `mmkd distill` (DESIGN.md §3–4): the multi-teacher methods the paper
/// compares, and the single-teacher baselines of its Table II (one teacher each).
public enum DistillationMethod: String, Codable, Sendable, CaseIterable {
    case kd
    /// FitNets (Romero et al. 2015): MSE between the regressed student hint (feature index 2) and
    /// the teacher's.
    case fitnet
    /// Attention transfer (Zagoruyko & Komodakis 2017): per stage, the L2-normalised spatial map of
    /// channel-mean squared activations; squared differences summed over stages.
    case at
    /// Variational information distillation (Ahn et al. 2019): per stage, the teacher's map scored
    /// under a Gaussian predicted from the student's (`VariationalInformationLayer`).
    case vid
    /// Contrastive representation distillation (Tian et al. 2020): NCE between embedded pooled
    /// features and memory banks of both networks (`ContrastiveRepresentation`).
    case crd
    /// Semantic calibration for cross-layer KD (Chen et al. 2021): every student stage against every
    /// teacher stage, weighted per sample by attention (`CrossLayerAttention`).
    case semckd
    /// Softmax regression representation learning (Yang et al. 2021): the pooled student feature,
    /// projected to the teacher's width, matches the teacher's pooled feature (FM) and, through the
    /// teacher's frozen classifier, its logits (SR).
    case srrl
    case aver
    case fitnetMKD = "fitnet-mkd"
    case ebkd
    case aekdLogits = "aekd-logits"
    case aekdFeature = "aekd-feature"
    case camkd
    case mmkd

    /// The feature-loss weight β the method uses unless told otherwise (the usual CIFAR-100 values:
    /// FitNet 100, AT 1000, VID 1, CRD 0.8, SemCKD 400, SRRL 1).
    public var defaultBeta: Float {
        switch self {
        case .kd, .aver, .ebkd, .aekdLogits: return 0
        case .srrl, .vid: return 1
        case .crd: return 0.8
        case .camkd: return 50
        case .fitnetMKD, .aekdFeature, .mmkd, .fitnet: return 100
        case .semckd: return 400
        case .at: return 1000
        }
    }

    /// The logit-term weight α unless told otherwise: the feature-based single-teacher baselines
    /// train on cross-entropy and their own term only (as their CIFAR-100 recipes).
    public var defaultAlpha: Float {
        switch self {
        case .fitnet, .at, .vid, .crd, .semckd, .srrl: return 0
        default: return 1
        }
    }

    /// Whether the method matches intermediate features.
    public var usesFeatures: Bool { defaultBeta > 0 }

    /// Which student map the per-teacher regressors project, if the method has regressors.
    public enum RegressedMap: Sendable { case hint, penultimate }
    public var regressedMap: RegressedMap? {
        switch self {
        case .fitnet, .fitnetMKD: return .hint
        case .at, .vid, .crd, .semckd: return nil
        default: return usesFeatures ? .penultimate : nil
        }
    }

    /// Whether the method distils exactly one teacher.
    public var isSingleTeacher: Bool { [.kd, .fitnet, .at, .vid, .crd, .semckd, .srrl].contains(self) }

    /// The fewest teachers the method makes sense with.
    public var minimumTeachers: Int {
        switch self {
        case .ebkd, .camkd: return 2
        default: return 1
        }
    }

    /// Why `count` teachers do not suit the method, or nil when they do.
    public func teacherCountProblem(_ count: Int) -> String? {
        if isSingleTeacher && count != 1 { return "\(rawValue) distils exactly one teacher, got \(count)" }
        if count < minimumTeachers { return "\(rawValue) needs at least \(minimumTeachers) teachers, got \(count)" }
        return nil
    }

    /// The regressor form the method's reference implementation uses.
    public var defaultRegressor: FeatureRegressor.Form { self == .camkd ? .convs : .oneByOne }
}

/// What `--hypergradient` selects for MMKD's meta step.
public enum HypergradientMode: String, Codable, Sendable, CaseIterable {
    /// Second order through the recorded look-ahead steps (Reverse-HG, as the paper).
    case exact
    /// Hessian–vector terms of the adjoint dropped; the mixed derivative ∂/∂φ⟨∇θL, v⟩ by central
    /// differences along v (two student forwards per step, no double backward).
    case firstOrder = "first-order"
}

/// Every knob of a distillation objective (paper defaults).
public struct DistillationHyperparameters: Codable, Sendable, Equatable {
    public var method: DistillationMethod
    /// Temperature τ of the KD terms.
    public var temperature: Float = 4
    /// Weight γ of cross-entropy.
    public var gamma: Float = 1
    /// Weight α of the logit-matching term.
    public var alpha: Float = 1
    /// Weight β of the feature term.
    public var beta: Float
    public var regressor: FeatureRegressor.Form
    /// Reproduce the official MMKD code's quirks (DESIGN.md §3) instead of following the paper.
    public var compatOfficial = false
    // MMKD
    public var metaLearningRate: Float = 1e-3
    public var metaWeightDecay: Float = 1e-4
    public var metaFrequency = 5
    public var bufferSize = 256
    public var useBuffer = true
    public var hypergradient: HypergradientMode = .exact
    /// Exact hypergradient: keep the look-ahead steps' graphs for the replay instead of recomputing
    /// them (faster, about 3× the memory of the meta step; same result).
    public var keepReplayGraphs = false
    /// Ablations (paper Figure 5): uniform weights instead of the learned ones.
    public var learnLogitWeights = true
    public var learnFeatureWeights = true
    // AEKD
    public var svmC: Double = 0.6

    public init(method: DistillationMethod) {
        self.method = method
        alpha = method.defaultAlpha
        beta = method.defaultBeta
        regressor = method.defaultRegressor
    }

    /// Which student map the regressors project in this configuration: the method's, and for AVER
    /// with β > 0 (the paper's Figure 4 sweeps β for AVER too) the penultimate map, matched with
    /// uniform teacher weights.
    public var regressedMap: DistillationMethod.RegressedMap? {
        method == .aver && beta > 0 ? .penultimate : method.regressedMap
    }

    /// The regressor form actually built (the official MMKD code ignores `--convs`).
    public var effectiveRegressor: FeatureRegressor.Form { compatOfficial && method == .mmkd ? .oneByOne : regressor }
}
