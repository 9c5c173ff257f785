import Engine
import Foundation

/// Adam with PyTorch's exact update (`torch.optim.Adam`, L2 weight decay added to the gradient):
/// `g += wd·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
/// p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)`.
public struct Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    public struct State {
        public var step: Int; public var expAvg: Tensor; public var expAvgSq: Tensor
        public init(step: Int, expAvg: Tensor, expAvgSq: Tensor) { self.step = step; self.expAvg = expAvg; self.expAvgSq = expAvgSq }
    }

    public func step(parameter p: Tensor, gradient g0: Tensor, state: State?) -> (Tensor, State) {
        let g = weightDecay != 0 ? g0 + p * weightDecay : g0
        let t = (state?.step ?? 0) + 1
        let m = (state?.expAvg ?? Tensor.zeros(p.shape)) * beta1 + g * (1 - beta1)
        let v = (state?.expAvgSq ?? Tensor.zeros(p.shape)) * beta2 + g.square() * (1 - beta2)
        let bc1 = 1 - Foundation.pow(Double(beta1), Double(t)), bc2 = 1 - Foundation.pow(Double(beta2), Double(t))
        let stepSize = Float(Double(learningRate) / bc1)
        let denom = v.sqrt() / Float(bc2.squareRoot()) + eps
        return (p - m / denom * stepSize, State(step: t, expAvg: m, expAvgSq: v))
    }
}
