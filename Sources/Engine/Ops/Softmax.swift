import Foundation

/// Numerically stable softmax and log-softmax along one axis.
extension Tensor {
    /// `exp(x - max) / Σ exp(x - max)` along `axis`.
    public func softmax(axis: Int = -1) -> Tensor {
        let storage = softmaxKernel(axis: axis, log: false)
        return Tensor.recorded("softmax", storage: storage, shape: shape, inputs: [self], backward: Derivatives.softmax(axis: axis))
    }

    /// `x - max - log Σ exp(x - max)` along `axis`.
    public func logSoftmax(axis: Int = -1) -> Tensor {
        let storage = softmaxKernel(axis: axis, log: true)
        return Tensor.recorded("logSoftmax", storage: storage, shape: shape, inputs: [self], backward: Derivatives.logSoftmax(axis: axis))
    }

    private func softmaxKernel(axis: Int, log: Bool) -> TensorStorage {
        let (outer, n, inner) = split(around: axis)
        let storage = TensorStorage(count: count)
        let x = pointer, y = storage.pointer
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                var m = -Float.infinity
                for k in 0..<n { m = Swift.max(m, x[base + k * inner]) }
                var s: Float = 0
                for k in 0..<n { let e = Foundation.expf(x[base + k * inner] - m); y[base + k * inner] = e; s += e }
                if log {
                    let ls = Foundation.logf(s) + m
                    for k in 0..<n { y[base + k * inner] = x[base + k * inner] - ls }
                } else {
                    let r = 1 / s
                    for k in 0..<n { y[base + k * inner] *= r }
                }
            }
        }
        return storage
    }
}
