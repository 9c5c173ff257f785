import Engine
import NN

/// Semantic calibration for cross-layer KD (Chen et al. 2021): every student stage against every
/// teacher stage, weighted per sample by attention (`CrossLayerAttention`, trained with the student
/// as `semckd.*`); β = 400.
public struct SemanticCalibration: SingleTeacherFeatureMethod {
    public init() {}
    public var name: String { "semckd" }
    public var summary: String { "cross-layer semantic calibration (attention over stage pairs) from one teacher (β 400)" }
    public func teacherMaps(_ hyper: DistillationHyperparameters) -> TeacherOutputs.Maps { .stages }
    public var defaultBeta: Float { 400 }

    public func makeParts(_ setup: MethodSetup) -> [(String, Module)] {
        let f = setup.studentFeatures
        return [("semckd", CrossLayerAttention(studentChannels: f[1..<(f.count - 1)].map { $0.shape[1] },
                                               teacherChannels: setup.teacherOutputs[0].stages.map { $0.shape[1] }, batchSize: setup.batchSize))]
    }

    public func ownTerm(_ batch: MethodBatch) -> Tensor {
        let t = batch.teacherOutputs[0]
        precondition(!t.stages.isEmpty, "SemCKD needs the teacher's stage maps")
        let f = batch.studentFeatures
        return (batch.learner.parts[0].1 as! CrossLayerAttention).loss(student: Array(f[1..<(f.count - 1)]), teacher: t.stages).loss
    }
}
