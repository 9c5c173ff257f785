import Engine
import Foundation
import NN

/// Variational information distillation (Ahn et al. 2019) for one pair of maps: a Gaussian with mean
/// `regressor(student)` (1×1 conv → ReLU → 1×1 conv → ReLU → 1×1 conv, no biases) and a learned
/// per-channel variance σ² = softplus(log_scale) + ε (initialised to 5) scores the teacher's map;
/// the loss is the mean negative log-likelihood ½((μ − t)²/σ² + log σ²). State-dict names
/// `regressor.*`, `log_scale`, as RepDistiller's `VIDLoss`.
public final class VariationalInformationLayer: Module {
    public let regressor: Sequential
    @Parameter public var logScale: Tensor
    public let eps: Float

    public init(studentChannels s: Int, teacherChannels t: Int, initialVariance: Float = 5, eps: Float = 1e-5) {
        regressor = Sequential(Conv2d(s, t, kernelSize: 1, bias: false), ReLU(), Conv2d(t, t, kernelSize: 1, bias: false), ReLU(),
                               Conv2d(t, t, kernelSize: 1, bias: false))
        logScale = Tensor.full([t], Float(Foundation.log(Foundation.exp(Double(initialVariance - eps)) - 1)))
        self.eps = eps
        super.init()
    }

    /// The mean negative log-likelihood of `teacher` under the prediction from `student` (maps brought
    /// to one spatial size first).
    public func negativeLogLikelihood(student: Tensor, teacher: Tensor) -> Tensor {
        let (s, t) = Tensor.matchingSpatialSize(student: student, teacher: teacher)
        let mean = regressor(s)
        let variance = ((logScale.exp() + 1).log() + eps).reshaped([1, logScale.count, 1, 1])
        return (((mean - t).square() / variance + variance.log()) * 0.5).mean()
    }
}
