import Engine

/// PyTorch's `nn.BatchNorm2d` (also accepts [N, C] input, as `BatchNorm1d`). In training mode it
/// normalises with batch statistics and updates the running ones (momentum 0.1, unbiased running
/// variance, `num_batches_tracked` counted); in evaluation mode it uses the running statistics.
/// Within a data-parallel step (`Replicas.current`), the batch statistics are the whole batch's
/// (synchronised batch norm).
public final class BatchNorm2d: Module, UnaryLayer {
    @Parameter public var weight: Tensor
    @Parameter public var bias: Tensor
    @Buffer public var runningMean: Tensor
    @Buffer public var runningVar: Tensor
    @Buffer public var numBatchesTracked: Tensor
    public let eps: Float, momentum: Float

    public init(_ features: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        weight = Tensor.ones([features]); bias = Tensor.zeros([features])
        runningMean = Tensor.zeros([features]); runningVar = Tensor.ones([features])
        numBatchesTracked = Tensor.zeros([])
        self.eps = eps; self.momentum = momentum
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { callAsFunction(x, fusedReLU: false) }

    /// Batch norm, followed by a ReLU computed in the same pass when `fusedReLU` (equal to
    /// `bn(x).relu()`, cheaper).
    public func callAsFunction(_ x: Tensor, fusedReLU: Bool) -> Tensor {
        guard isTraining else {
            return x.batchNormInference(weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVar, eps: eps, fusedReLU: fusedReLU)
        }
        let (y, mean, variance) = x.batchNormTraining(weight: weight, bias: bias, eps: eps, fusedReLU: fusedReLU)
        // Values per channel in the whole batch (synchronised batch norm: every process holds an equal slice).
        let n = Float(x.count / x.shape[1] * (Replicas.current?.size ?? 1))
        withoutGrad {
            runningMean = runningMean * (1 - momentum) + mean * momentum
            runningVar = runningVar * (1 - momentum) + variance * (momentum * n / Swift.max(n - 1, 1))
            numBatchesTracked = numBatchesTracked + 1
        }
        return y
    }
}
