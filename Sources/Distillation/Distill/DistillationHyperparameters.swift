/// Every knob of a distillation objective (paper defaults). Saved in `config.json` and resume files
/// with the method as its registered name.
public struct DistillationHyperparameters: Codable, Sendable, Equatable {
    public var method: any DistillationMethod
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

    /// The defaults of `method`.
    public init(method: any DistillationMethod) {
        self.method = method
        alpha = method.defaultAlpha
        beta = method.defaultBeta
        regressor = method.defaultRegressor
    }

    /// The defaults of the method called `name` (an unknown name is an error naming the known ones).
    public init(methodNamed name: String) throws { self.init(method: try DistillationMethods.method(named: name)) }

    /// Which student map the regressors project in this configuration.
    public var regressedMap: RegressedMap? { method.regressedMap(self) }

    /// The regressor form actually built.
    public var effectiveRegressor: FeatureRegressor.Form { method.regressorForm(self) }

    enum CodingKeys: String, CodingKey {
        case method, temperature, gamma, alpha, beta, regressor, compatOfficial, metaLearningRate, metaWeightDecay, metaFrequency
        case bufferSize, useBuffer, hypergradient, keepReplayGraphs, learnLogitWeights, learnFeatureWeights, svmC
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .method)
        guard let method = DistillationMethods.named(name) else {
            throw DecodingError.dataCorruptedError(forKey: .method, in: c, debugDescription: "unknown method '\(name)'; known: \(DistillationMethods.names.joined(separator: ", "))")
        }
        self.method = method
        temperature = try c.decode(Float.self, forKey: .temperature)
        gamma = try c.decode(Float.self, forKey: .gamma)
        alpha = try c.decode(Float.self, forKey: .alpha)
        beta = try c.decode(Float.self, forKey: .beta)
        regressor = try c.decode(FeatureRegressor.Form.self, forKey: .regressor)
        compatOfficial = try c.decode(Bool.self, forKey: .compatOfficial)
        metaLearningRate = try c.decode(Float.self, forKey: .metaLearningRate)
        metaWeightDecay = try c.decode(Float.self, forKey: .metaWeightDecay)
        metaFrequency = try c.decode(Int.self, forKey: .metaFrequency)
        bufferSize = try c.decode(Int.self, forKey: .bufferSize)
        useBuffer = try c.decode(Bool.self, forKey: .useBuffer)
        hypergradient = try c.decode(HypergradientMode.self, forKey: .hypergradient)
        keepReplayGraphs = try c.decode(Bool.self, forKey: .keepReplayGraphs)
        learnLogitWeights = try c.decode(Bool.self, forKey: .learnLogitWeights)
        learnFeatureWeights = try c.decode(Bool.self, forKey: .learnFeatureWeights)
        svmC = try c.decode(Double.self, forKey: .svmC)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method.name, forKey: .method)
        try c.encode(temperature, forKey: .temperature); try c.encode(gamma, forKey: .gamma)
        try c.encode(alpha, forKey: .alpha); try c.encode(beta, forKey: .beta)
        try c.encode(regressor, forKey: .regressor); try c.encode(compatOfficial, forKey: .compatOfficial)
        try c.encode(metaLearningRate, forKey: .metaLearningRate); try c.encode(metaWeightDecay, forKey: .metaWeightDecay)
        try c.encode(metaFrequency, forKey: .metaFrequency); try c.encode(bufferSize, forKey: .bufferSize)
        try c.encode(useBuffer, forKey: .useBuffer); try c.encode(hypergradient, forKey: .hypergradient)
        try c.encode(keepReplayGraphs, forKey: .keepReplayGraphs); try c.encode(learnLogitWeights, forKey: .learnLogitWeights)
        try c.encode(learnFeatureWeights, forKey: .learnFeatureWeights); try c.encode(svmC, forKey: .svmC)
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.method.name == b.method.name && a.temperature == b.temperature && a.gamma == b.gamma && a.alpha == b.alpha && a.beta == b.beta
            && a.regressor == b.regressor && a.compatOfficial == b.compatOfficial && a.metaLearningRate == b.metaLearningRate
            && a.metaWeightDecay == b.metaWeightDecay && a.metaFrequency == b.metaFrequency && a.bufferSize == b.bufferSize
            && a.useBuffer == b.useBuffer && a.hypergradient == b.hypergradient && a.keepReplayGraphs == b.keepReplayGraphs
            && a.learnLogitWeights == b.learnLogitWeights && a.learnFeatureWeights == b.learnFeatureWeights && a.svmC == b.svmC
    }
}

/// What `--hypergradient` selects for MMKD's meta step.
public enum HypergradientMode: String, Codable, Sendable, CaseIterable {
    /// Second order through the recorded look-ahead steps (Reverse-HG, as the paper).
    case exact
    /// Hessian–vector terms of the adjoint dropped; the mixed derivative ∂/∂φ⟨∇θL, v⟩ by central
    /// differences along v (two student forwards per step, no double backward).
    case firstOrder = "first-order"
}
