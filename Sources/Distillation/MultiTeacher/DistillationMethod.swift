/// A distillation method of `mmkd distill` (DESIGN.md §3–4).
public enum DistillationMethod: String, Codable, Sendable, CaseIterable {
    case kd
    case aver
    case fitnetMKD = "fitnet-mkd"
    case ebkd
    case aekdLogits = "aekd-logits"
    case aekdFeature = "aekd-feature"
    case camkd
    case mmkd

    /// The feature-loss weight β the method uses unless told otherwise.
    public var defaultBeta: Float {
        switch self {
        case .kd, .aver, .ebkd, .aekdLogits: return 0
        case .camkd: return 50
        case .fitnetMKD, .aekdFeature, .mmkd: return 100
        }
    }

    /// Whether the method matches intermediate features (and so has regressors).
    public var usesFeatures: Bool { defaultBeta > 0 }

    /// The fewest teachers the method makes sense with.
    public var minimumTeachers: Int {
        switch self {
        case .ebkd, .camkd: return 2
        default: return 1
        }
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
        beta = method.defaultBeta
        regressor = method.defaultRegressor
    }

    /// The regressor form actually built (the official MMKD code ignores `--convs`).
    public var effectiveRegressor: FeatureRegressor.Form { compatOfficial && method == .mmkd ? .oneByOne : regressor }
}
