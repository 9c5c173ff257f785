/// Products with selected rows of a constant table (a memory bank), without materialising the
/// selected rows: CRD scores `B × K` memory rows against `B` embeddings this way. Each op is the
/// other's adjoint (rules in `Derivatives`).
extension Tensor {
    /// `out[b, k] = ⟨table[rows[b][k]], v[b]⟩` for a constant `table` `[N, D]` and `v` `[B, D]`:
    /// the scores of memory rows without materialising `[B, K, D]`. Its derivative in `v` is
    /// `rowCombination`, whose derivative in its weights is this op again.
    public static func rowDots(_ table: Tensor, _ rows: [[Int]], _ v: Tensor) -> Tensor {
        let (b, d) = (v.shape[0], v.shape[1])
        let k = rows.first?.count ?? 0
        precondition(rows.count == b && rows.allSatisfy { $0.count == k } && table.shape[1] == d, "rowDots: shapes \(table.shape), \(rows.count)×\(k), \(v.shape)")
        let tp = table.pointer, vp = v.pointer
        let out = Tensor.make([b, k]) { p, _ in
            for i in 0..<b { for j in 0..<k {
                let row = tp + rows[i][j] * d, vec = vp + i * d
                var s: Float = 0
                for e in 0..<d { s += row[e] * vec[e] }
                p[i * k + j] = s
            } }
        }
        return recorded("rowDots", storage: out.storage, shape: [b, k], inputs: [v], backward: Derivatives.rowDots(table, rows))
    }

    /// `out[b] = Σ_k w[b, k] · table[rows[b][k]]` (`[B, D]`), the adjoint of `rowDots`.
    public static func rowCombination(_ table: Tensor, _ rows: [[Int]], _ w: Tensor) -> Tensor {
        let (b, k, d) = (w.shape[0], w.shape[1], table.shape[1])
        let tp = table.pointer, wp = w.pointer
        let out = Tensor.make([b, d]) { p, _ in
            p.initialize(repeating: 0, count: b * d)
            for i in 0..<b { for j in 0..<k {
                let row = tp + rows[i][j] * d, c = wp[i * k + j]
                for e in 0..<d { p[i * d + e] += c * row[e] }
            } }
        }
        return recorded("rowCombination", storage: out.storage, shape: [b, d], inputs: [w], backward: Derivatives.rowCombination(table, rows))
    }
}
