import Engine

/// What a distillation method reads from a teacher for one batch, computed without gradients.
public struct TeacherOutputs {
    /// The maps a teacher's outputs hold beyond its logits and penultimate map, which a run keeps
    /// only when its method reads them (`DistillationMethod.teacherMaps`): at batch 64 a
    /// resnet32x4's hint and stage maps are 50 MB per teacher, in more than one layout.
    public struct Maps: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// FitNet's hint map.
        public static let hint = Maps(rawValue: 1)
        /// The stage maps of attention transfer, SemCKD and VID.
        public static let stages = Maps(rawValue: 2)
        public static let all: Maps = [.hint, .stages]
    }

    public var logits: Tensor
    /// The penultimate spatial map (feature index −2), matched by MMKD, CA-MKD and AEKD-feature.
    public var penultimate: Tensor
    /// FitNet's hint map (feature index 2); nil where not kept (`Maps`).
    public var hint: Tensor?
    /// The stage maps attention transfer matches (feature indices 1 … −2; empty where not kept,
    /// as for hard-buffer samples).
    public var stages: [Tensor]
    /// The whole batch's penultimate maps of a data-parallel step, once fetched.
    private let wholeBatch: WholeBatchCache

    /// `wholeBatchPenultimate`, where known, is every process's `penultimate` in rank order (as
    /// the hard buffer's draws have it before each process takes its slice).
    public init(logits: Tensor, penultimate: Tensor, hint: Tensor? = nil, stages: [Tensor] = [], wholeBatchPenultimate: Tensor? = nil) {
        self.logits = logits; self.penultimate = penultimate; self.hint = hint; self.stages = stages
        wholeBatch = WholeBatchCache(slice: penultimate, whole: wholeBatchPenultimate)
    }

    /// Every process's penultimate maps of this batch in rank order (`gatheredAcrossReplicas`),
    /// gathered at most once however many readers ask (MMKD's feature weights in each loss it
    /// evaluates, and the hard buffer).
    public func wholeBatchPenultimate(_ group: any ReplicaGroup) -> Tensor { wholeBatch.value(of: penultimate, group) }
}

/// The gathered whole batch of one slice tensor, kept for the next reader.
private final class WholeBatchCache {
    private var slice: Tensor
    private var whole: Tensor?

    init(slice: Tensor, whole: Tensor?) { self.slice = slice; self.whole = whole }

    func value(of current: Tensor, _ group: any ReplicaGroup) -> Tensor {
        if current !== slice { (slice, whole) = (current, nil) }  // the outputs' map was replaced
        if let whole { return whole }
        let gathered = current.wholeBatchValues(group)
        whole = gathered
        return gathered
    }
}

extension TeacherOutputs {
    /// What MMKD's hard buffer keeps of a teacher's outputs per sample (the meta step reads no
    /// more): the logits and the penultimate map, in this order.
    var cachedParts: [Tensor] { [logits, penultimate] }
    static let cachedPartCount = 2

    /// `cachedParts` of the whole batch of a data-parallel step: every process's, in rank order.
    func wholeBatchCachedParts(_ group: any ReplicaGroup) -> [Tensor] {
        [logits.wholeBatchValues(group), wholeBatchPenultimate(group)]
    }

    /// Outputs rebuilt from `cachedParts` (no hint or stage maps: they are not cached).
    init(cachedParts p: ArraySlice<Tensor>) {
        precondition(p.count == TeacherOutputs.cachedPartCount, "TeacherOutputs: \(p.count) cached parts")
        self.init(logits: p[p.startIndex], penultimate: p[p.startIndex + 1])
    }
}

extension Tensor {
    /// Every process's values of this tensor in rank order, as a constant (nothing flows back).
    func wholeBatchValues(_ group: any ReplicaGroup) -> Tensor { withoutGrad { detached().gatheredAcrossReplicas(group) } }
}
