import Engine
import Models
import NN

/// Everything the distillation optimiser trains: the student, the per-teacher regressors and the
/// method's own parts (VID's per-stage layers, SemCKD's attention, CRD's embeddings and memories).
/// One module, so one snapshot, one `update(parameters:)` and one SGD state cover them all (MMKD's
/// rollback includes all of them). State-dict names: `student.*`, `regressors.K.*`, then each part
/// under the name its method gives it (`vid.L.*`, `semckd.*`, `crd.*`).
public final class DistillationLearner: Module {
    public let student: any FeatureClassifier
    public let regressors: [FeatureRegressor]
    /// The method's parts with their state-dict names (`DistillationMethod.makeParts`).
    public let parts: [(String, Module)]

    public init(student: any FeatureClassifier, regressors: [FeatureRegressor], parts: [(String, Module)] = []) {
        self.student = student; self.regressors = regressors; self.parts = parts
        super.init()
    }

    public override var namedChildren: [(String, Module)] {
        [("student", student)] + regressors.enumerated().map { ("regressors.\($0.offset)", $0.element) } + parts
    }
}
