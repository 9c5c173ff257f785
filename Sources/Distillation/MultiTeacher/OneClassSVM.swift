/// The dual of a linear one-class SVM over K ≤ 8 points, solved exactly: minimise ½·αᵀGα subject to
/// 0 ≤ α_i ≤ 1 and Σα_i = ν·K (libsvm's formulation, which scikit-learn's `OneClassSVM` uses). Every
/// split of the indices into "at 0", "at 1" and "free" is tried; each split's KKT system is solved
/// directly and the feasible KKT point of least objective is returned. G must be symmetric positive
/// semi-definite (a Gram matrix).
public enum OneClassSVM {
    /// Dual coefficients α for the Gram matrix `gram` (K × K, row-major) and ν ∈ (0, 1].
    public static func dualCoefficients(gram unscaled: [[Double]], nu: Double) -> [Double] {
        let k = unscaled.count
        precondition(k >= 1 && k <= 12 && unscaled.allSatisfy { $0.count == k }, "OneClassSVM: needs a square Gram matrix of 1…12 points, got \(k) rows")
        precondition(nu > 0 && nu <= 1, "OneClassSVM: ν must lie in (0, 1], got \(nu)")
        let total = nu * Double(k)
        // α is invariant to scaling G: work at unit scale so tolerances are absolute.
        let scale = max(unscaled.flatMap { $0 }.map(abs).max() ?? 1, 1e-300)
        let gram = unscaled.map { $0.map { $0 / scale } }
        let tol = 1e-9
        var best: [Double]? = nil, bestObjective = Double.infinity
        var labels = [Int](repeating: 0, count: k)  // 0: α = 0, 1: α = 1, 2: free
        let combinations = Int(pow3(k))
        for code in 0..<combinations {
            var c = code
            for i in 0..<k { labels[i] = c % 3; c /= 3 }
            let free = (0..<k).filter { labels[$0] == 2 }, upper = (0..<k).filter { labels[$0] == 1 }
            let remaining = total - Double(upper.count)
            var alpha = [Double](repeating: 0, count: k)
            for i in upper { alpha[i] = 1 }
            var lambda: Double
            if free.isEmpty {
                guard abs(remaining) < 1e-12 else { continue }
                // λ is only bounded by the KKT inequalities: choose any value between them.
                let g = gradient(gram, alpha)
                let lo = upper.map { g[$0] }.max() ?? -Double.infinity, hi = (0..<k).filter { labels[$0] == 0 }.map { g[$0] }.min() ?? Double.infinity
                guard lo <= hi + tol else { continue }
                lambda = lo.isFinite ? lo : (hi.isFinite ? hi : 0)
            } else {
                // [G_FF  −1; 1ᵀ 0] [α_F; λ] = [−G_FU·1; remaining]
                let n = free.count + 1
                var a = [[Double]](repeating: [Double](repeating: 0, count: n + 1), count: n)
                for (r, i) in free.enumerated() {
                    for (cIndex, j) in free.enumerated() { a[r][cIndex] = gram[i][j] }
                    a[r][n - 1] = -1
                    a[r][n] = -upper.reduce(0) { $0 + gram[i][$1] }
                }
                for cIndex in 0..<free.count { a[n - 1][cIndex] = 1 }
                a[n - 1][n] = remaining
                guard let solution = solve(&a, tolerance: 1e-12) else { continue }
                for (r, i) in free.enumerated() { alpha[i] = solution[r] }
                lambda = solution[n - 1]
                guard free.allSatisfy({ alpha[$0] >= -1e-10 && alpha[$0] <= 1 + 1e-10 }) else { continue }
            }
            let g = gradient(gram, alpha)
            let kkt = (0..<k).allSatisfy { i in
                switch labels[i] {
                case 0: return g[i] >= lambda - tol
                case 1: return g[i] <= lambda + tol
                default: return true
                }
            }
            guard kkt else { continue }
            let objective = 0.5 * zip(alpha, g).reduce(0) { $0 + $1.0 * $1.1 }
            if objective < bestObjective - 1e-15 {
                bestObjective = objective
                best = alpha.map { min(max($0, 0), 1) }
            }
        }
        guard let best else { preconditionFailure("OneClassSVM: no KKT point found (is the Gram matrix symmetric positive semi-definite?)") }
        return best
    }

    /// AEKD's teacher weights from per-teacher gradient vectors: ν = 1/(C·K) clamped to [1/K, 1],
    /// weights = α / (K·ν) (they sum to 1).
    public static func teacherWeights(vectors: [[Double]], c: Double = 0.6) -> [Double] {
        let k = vectors.count
        let gram = vectors.map { a in vectors.map { b in zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } } }
        let nu = min(max(1 / (c * Double(k)), 1 / Double(k)), 1)
        return dualCoefficients(gram: gram, nu: nu).map { $0 / (Double(k) * nu) }
    }

    static func pow3(_ k: Int) -> Int { (0..<k).reduce(1) { r, _ in r * 3 } }

    static func gradient(_ gram: [[Double]], _ alpha: [Double]) -> [Double] {
        gram.map { row in zip(row, alpha).reduce(0) { $0 + $1.0 * $1.1 } }
    }

    /// Gaussian elimination with partial pivoting on an augmented n × (n+1) matrix; nil when singular.
    static func solve(_ a: inout [[Double]], tolerance: Double) -> [Double]? {
        let n = a.count
        for col in 0..<n {
            guard let pivot = (col..<n).max(by: { abs(a[$0][col]) < abs(a[$1][col]) }), abs(a[pivot][col]) > tolerance else { return nil }
            a.swapAt(col, pivot)
            for r in 0..<n where r != col {
                let f = a[r][col] / a[col][col]
                if f != 0 { for c in col...n { a[r][c] -= f * a[col][c] } }
            }
        }
        return (0..<n).map { a[$0][n] / a[$0][$0] }
    }
}
