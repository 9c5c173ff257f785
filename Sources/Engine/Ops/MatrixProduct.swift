import COpenBLAS

/// Matrix products through OpenBLAS `cblas_sgemm`. Transposes are flags, never copies; the
/// derivative of a product is two products.
extension Tensor {
    /// `op(self) · op(other)` for 2-D operands, or batch-wise for 3-D operands of equal batch.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        Tensor.product(self, other, transposeSelf, transposeOther)
    }

    static func product(_ a: Tensor, _ b: Tensor, _ ta: Bool, _ tb: Bool) -> Tensor {
        precondition((a.rank == 2 && b.rank == 2) || (a.rank == 3 && b.rank == 3 && a.shape[0] == b.shape[0]),
                     "matmul: shapes \(a.shape) and \(b.shape) must both be 2-D or 3-D with equal batch")
        let batch = a.rank == 3 ? a.shape[0] : 1
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let m = ta ? ac : ar, k = ta ? ar : ac
        let k2 = tb ? bc : br, n = tb ? br : bc
        precondition(k == k2, "matmul: inner dimensions differ: \(a.shape)\(ta ? "ᵀ" : "") · \(b.shape)\(tb ? "ᵀ" : "")")
        let shape = a.rank == 3 ? [batch, m, n] : [m, n]
        FlopCounter.add(2 * Double(batch * m * n * k))
        let storage = TensorStorage(count: Shape.count(shape))
        for i in 0..<batch {
            GEMM.multiply(a.pointer + i * ar * ac, b.pointer + i * br * bc, storage.pointer + i * m * n,
                          m: m, n: n, k: k, transposeA: ta, transposeB: tb)
        }
        return recorded("matmul", storage: storage, shape: shape, inputs: [a, b], backward: Derivatives.matmul(a, b, ta, tb))
    }

    /// `x · Wᵀ + b` for x of shape [N, in], W of shape [out, in] (PyTorch's `F.linear`).
    public func linear(_ weight: Tensor, bias: Tensor? = nil) -> Tensor {
        precondition(rank == 2 && weight.rank == 2 && shape[1] == weight.shape[1],
                     "linear: input \(shape) does not fit weight \(weight.shape) (expected [N, \(weight.shape.last ?? 0)])")
        return Tensor.traced(.linear, [self, weight] + (bias.map { [$0] } ?? [])) {
            let y = matmul(weight, transposeOther: true)
            return bias.map { y + $0 } ?? y
        }
    }
}

/// Raw `sgemm`: C = op(A)·op(B), row-major, C overwritten (or added to when `accumulate`).
public enum GEMM {
    public static func multiply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, accumulate: Bool = false) {
        _ = EngineThreads.configure
        if m == 0 || n == 0 { return }
        if k == 0 { if !accumulate { c.initialize(repeating: 0, count: m * n) }; return }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(transposeA ? m : k), b, Int32(transposeB ? k : n), accumulate ? 1 : 0, c, Int32(n))
    }
}
