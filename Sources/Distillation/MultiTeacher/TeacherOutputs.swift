import Engine

/// What a distillation method reads from a teacher for one batch, computed without gradients.
public struct TeacherOutputs {
    public var logits: Tensor
    /// The penultimate spatial map (feature index −2), matched by MMKD, CA-MKD and AEKD-feature.
    public var penultimate: Tensor
    /// FitNet's hint map (feature index 2).
    public var hint: Tensor
    /// The stage maps attention transfer matches (feature indices 1 … −2; empty where not kept,
    /// as for hard-buffer samples).
    public var stages: [Tensor]

    public init(logits: Tensor, penultimate: Tensor, hint: Tensor, stages: [Tensor] = []) {
        self.logits = logits; self.penultimate = penultimate; self.hint = hint; self.stages = stages
    }
}

extension TeacherOutputs {
    /// What MMKD's hard buffer keeps of a teacher's outputs per sample (the meta step reads no
    /// more): the logits and the penultimate map, in this order.
    var cachedParts: [Tensor] { [logits, penultimate] }
    static let cachedPartCount = 2

    /// Outputs rebuilt from `cachedParts` (the hint is not cached: the penultimate map stands in).
    init(cachedParts p: ArraySlice<Tensor>) {
        precondition(p.count == TeacherOutputs.cachedPartCount, "TeacherOutputs: \(p.count) cached parts")
        self.init(logits: p[p.startIndex], penultimate: p[p.startIndex + 1], hint: p[p.startIndex + 1])
    }
}
