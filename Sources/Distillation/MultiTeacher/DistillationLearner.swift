import Engine
import Models
import NN

/// Everything the distillation optimiser trains: the student, the per-teacher regressors, VID's
/// per-stage layers, SemCKD's attention and CRD's embeddings and memories. One module, so one snapshot, one `update(parameters:)`
/// and one SGD state cover them all (MMKD's rollback includes all of them). State-dict names:
/// `student.*`, `regressors.K.*`, `vid.L.*`, `semckd.*`, `crd.*`.
public final class DistillationLearner: Module {
    public let student: any FeatureClassifier
    public let regressors: [FeatureRegressor]
    public let vid: [VariationalInformationLayer]
    public let semckd: CrossLayerAttention?
    public let crd: ContrastiveRepresentation?

    public init(student: any FeatureClassifier, regressors: [FeatureRegressor], vid: [VariationalInformationLayer] = [],
                semckd: CrossLayerAttention? = nil, crd: ContrastiveRepresentation? = nil) {
        self.student = student; self.regressors = regressors; self.vid = vid; self.semckd = semckd; self.crd = crd
        super.init()
    }
}

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
