import Engine
import NN

/// Variational information distillation (Ahn et al. 2019): per matching stage, the teacher's map
/// scored under a Gaussian predicted from the student's (`VariationalInformationLayer`, trained with
/// the student as `vid.L.*`); β = 1.
public struct VariationalInformationDistillation: SingleTeacherFeatureMethod {
    public init() {}
    public var name: String { "vid" }
    public var summary: String { "variational information distillation over matching stages from one teacher (β 1)" }
    public func teacherMaps(_ hyper: DistillationHyperparameters) -> TeacherOutputs.Maps { .stages }
    public var defaultBeta: Float { 1 }

    public func makeParts(_ setup: MethodSetup) -> [(String, Module)] {
        Tensor.stagePairs(student: setup.studentFeatures, teacher: setup.teacherOutputs[0].stages).enumerated().map { i, p in
            ("vid.\(i)", VariationalInformationLayer(studentChannels: p.student.shape[1], teacherChannels: p.teacher.shape[1]))
        }
    }

    public func ownTerm(_ batch: MethodBatch) -> Tensor {
        let layers = batch.learner.parts.map { $0.1 as! VariationalInformationLayer }
        return Tensor.stagePairs(student: batch.studentFeatures, teacher: batch.teacherOutputs[0].stages).enumerated().map { i, p in
            layers[i].negativeLogLikelihood(student: p.student, teacher: p.teacher)
        }.reduce(Tensor(scalar: 0), +)
    }
}
