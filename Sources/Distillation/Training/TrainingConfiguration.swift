import Datasets

/// Everything that determines a supervised training run (the paper's recipe by default).
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    public var arch: String
    public var data: String
    public var epochs: Int = 240
    public var batchSize: Int = 64
    public var learningRate: Float = 0.05
    public var milestones: [Int] = [150, 180, 210]
    /// The factor the learning rate is multiplied by at each milestone.
    public var lrDecay: Float = 0.1
    public var momentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    public var nesterov: Bool = true
    public var seed: UInt64 = 0
    public var loaderThreads: Int = 2
    /// Training samples used per epoch (nil: all), for short budgets.
    public var trainLimit: Int?
    /// Test images evaluated: this many spread evenly over the test split (nil: all), for quick runs.
    public var testLimit: Int?
    /// Whether training images are augmented (the data set's random crops and flips); without, they
    /// go through the test pipeline. Saved only when off, so earlier files read as on.
    public var augment = true

    public init(arch: String, data: String) { self.arch = arch; self.data = data }

    enum CodingKeys: String, CodingKey {
        case arch, data, epochs, batchSize, learningRate, milestones, lrDecay, momentum, weightDecay, nesterov, seed, loaderThreads
        case trainLimit, testLimit, augment
        /// What `lrDecay` was called in the files of earlier versions (read, never written).
        case legacyLRDecay = "gamma"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        arch = try c.decode(String.self, forKey: .arch)
        data = try c.decode(String.self, forKey: .data)
        epochs = try c.decode(Int.self, forKey: .epochs)
        batchSize = try c.decode(Int.self, forKey: .batchSize)
        learningRate = try c.decode(Float.self, forKey: .learningRate)
        milestones = try c.decode([Int].self, forKey: .milestones)
        lrDecay = try c.decodeIfPresent(Float.self, forKey: .lrDecay) ?? c.decode(Float.self, forKey: .legacyLRDecay)
        momentum = try c.decode(Float.self, forKey: .momentum)
        weightDecay = try c.decode(Float.self, forKey: .weightDecay)
        nesterov = try c.decode(Bool.self, forKey: .nesterov)
        seed = try c.decode(UInt64.self, forKey: .seed)
        loaderThreads = try c.decode(Int.self, forKey: .loaderThreads)
        trainLimit = try c.decodeIfPresent(Int.self, forKey: .trainLimit)
        testLimit = try c.decodeIfPresent(Int.self, forKey: .testLimit)
        augment = try c.decodeIfPresent(Bool.self, forKey: .augment) ?? true
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(arch, forKey: .arch); try c.encode(data, forKey: .data); try c.encode(epochs, forKey: .epochs)
        try c.encode(batchSize, forKey: .batchSize); try c.encode(learningRate, forKey: .learningRate)
        try c.encode(milestones, forKey: .milestones); try c.encode(lrDecay, forKey: .lrDecay); try c.encode(momentum, forKey: .momentum)
        try c.encode(weightDecay, forKey: .weightDecay); try c.encode(nesterov, forKey: .nesterov); try c.encode(seed, forKey: .seed)
        try c.encode(loaderThreads, forKey: .loaderThreads)
        try c.encodeIfPresent(trainLimit, forKey: .trainLimit); try c.encodeIfPresent(testLimit, forKey: .testLimit)
        if !augment { try c.encode(augment, forKey: .augment) }
    }

    /// The images trained on each epoch: all of `trainSet`, or a seeded subset of `trainLimit`.
    public func trainingImages(_ trainSet: any ImageDataset) -> any ImageDataset {
        trainLimit.map { SubsetDataset(trainSet, count: $0, seed: seed) } ?? trainSet
    }

    /// The images evaluated: all of `testSet`, or `testLimit` of them spread evenly over it.
    public func testImages(_ testSet: any ImageDataset) -> any ImageDataset {
        testLimit.map { SubsetDataset(testSet, spreadOver: $0) } ?? testSet
    }

    /// The paper's learning rate: 0.01 for MobileNetV2 and the ShuffleNets, 0.05 otherwise.
    public static func defaultLearningRate(arch: String) -> Float {
        ["MobileNetV2", "ShuffleV1", "ShuffleV2"].contains(arch) ? 0.01 : 0.05
    }
}
