import Engine
import NN

/// Contrastive representation distillation (Tian et al. 2020): NCE between embedded pooled features
/// and memory banks of both networks (`ContrastiveRepresentation`, trained with the student as
/// `crd.*`); needs each batch's training-set positions; β = 0.8.
public struct ContrastiveRepresentationDistillation: SingleTeacherFeatureMethod {
    public init() {}
    public var name: String { "crd" }
    public var summary: String { "contrastive representation distillation with memory banks from one teacher (β 0.8)" }
    public var defaultBeta: Float { 0.8 }

    public func makeParts(_ setup: MethodSetup) -> [(String, Module)] {
        let s = setup.studentFeatures[setup.studentFeatures.count - 2].shape[1]
        return [("crd", ContrastiveRepresentation(studentDim: s, teacherDim: setup.teacherOutputs[0].penultimate.shape[1],
                                                  labels: setup.trainingLabels, seed: setup.seed))]
    }

    public func ownTerm(_ batch: MethodBatch) -> Tensor {
        guard let indices = batch.indices else { preconditionFailure("CRD needs the batch's training-set positions") }
        let crd = batch.learner.parts[0].1 as! ContrastiveRepresentation
        let pooled = { (f: Tensor) in f.adaptiveAvgPool2d((1, 1)).flattened() }
        return crd.loss(student: pooled(batch.penultimate), teacher: pooled(batch.teacherOutputs[0].penultimate), indices: indices)
    }
}
