/// PyTorch's `MultiStepLR`: the base rate times `gamma` for every milestone already reached.
public struct MultiStepLR: Sendable, Equatable {
    public var baseRate: Float
    public var milestones: [Int]
    public var gamma: Float

    public init(baseRate: Float, milestones: [Int], gamma: Float = 0.1) {
        self.baseRate = baseRate; self.milestones = milestones.sorted(); self.gamma = gamma
    }

    /// The rate during (0-based) `epoch`: milestones count completed epochs, as
    /// `scheduler.step()` once per epoch does.
    public func rate(epoch: Int) -> Float {
        let passed = milestones.filter { epoch >= $0 }.count
        var r = baseRate
        for _ in 0..<passed { r *= gamma }
        return r
    }
}
