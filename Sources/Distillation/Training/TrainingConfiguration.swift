/// Everything that determines a supervised training run (the paper's recipe by default).
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    public var arch: String
    public var data: String
    public var epochs: Int = 240
    public var batchSize: Int = 64
    public var learningRate: Float = 0.05
    public var milestones: [Int] = [150, 180, 210]
    public var gamma: Float = 0.1
    public var momentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    public var nesterov: Bool = true
    public var seed: UInt64 = 0
    public var loaderThreads: Int = 2
    /// Training samples used per epoch (nil: all), for short budgets.
    public var trainLimit: Int?

    public init(arch: String, data: String) { self.arch = arch; self.data = data }

    /// The paper's learning rate: 0.01 for MobileNetV2 and the ShuffleNets, 0.05 otherwise.
    public static func defaultLearningRate(arch: String) -> Float {
        ["MobileNetV2", "ShuffleV1", "ShuffleV2"].contains(arch) ? 0.01 : 0.05
    }
}
