import NN

/// MMKD's two meta-weight networks (logits: width C; features: width B). State-dict names
/// `logit.*`, `feature.*`.
public final class MMKDMetaNetworks: Module {
    public let logit: MetaWeightNetwork
    public let feature: MetaWeightNetwork

    public init(teachers: Int, classes: Int, batchSize: Int) {
        logit = MetaWeightNetwork(teachers: teachers, width: classes)
        feature = MetaWeightNetwork(teachers: teachers, width: batchSize)
        super.init()
    }
}
