import Engine

/// Stochastic gradient descent with PyTorch's exact update (`torch.optim.SGD`):
/// `d = g + wd·p`; `buf = d` on the first step, else `m·buf + (1 − dampening)·d`;
/// `d = d + m·buf` (Nesterov) or `d = buf`; `p ← p − lr·d`.
public struct SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float
    public var dampening: Float
    public var weightDecay: Float
    public var nesterov: Bool

    public init(learningRate: Float, momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
        precondition(learningRate >= 0, "SGD: learning rate must be ≥ 0, got \(learningRate)")
        precondition(!nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov needs momentum > 0 and zero dampening")
        self.learningRate = learningRate; self.momentum = momentum; self.dampening = dampening
        self.weightDecay = weightDecay; self.nesterov = nesterov
    }

    /// The momentum buffer (nil without momentum).
    public struct State {
        public var momentumBuffer: Tensor?
        public init(momentumBuffer: Tensor?) { self.momentumBuffer = momentumBuffer }
    }

    public func step(parameter p: Tensor, gradient g: Tensor, state: State?) -> (Tensor, State) {
        var d = weightDecay != 0 ? g + p * weightDecay : g
        var buffer: Tensor? = nil
        if momentum != 0 {
            let buf = state?.momentumBuffer.map { $0 * momentum + d * (1 - dampening) } ?? d
            buffer = buf
            d = nesterov ? d + buf * momentum : buf
        }
        return (p - d * learningRate, State(momentumBuffer: buffer))
    }
}
