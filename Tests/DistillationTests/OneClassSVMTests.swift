import Distillation
import Engine
import XCTest

/// The exact one-class-SVM dual against a slow projected-gradient oracle.
final class OneClassSVMTests: XCTestCase {
    /// Projection onto {0 ≤ α ≤ 1, Σα = s} by bisection on the shift.
    func project(_ x: [Double], sum s: Double) -> [Double] {
        var lo = x.min()! - 2, hi = x.max()! + 2
        for _ in 0..<60 {
            let mid = (lo + hi) / 2
            let total = x.map { min(max($0 - mid, 0), 1) }.reduce(0, +)
            if total > s { lo = mid } else { hi = mid }
        }
        return x.map { min(max($0 - (lo + hi) / 2, 0), 1) }
    }

    func objective(_ g: [[Double]], _ a: [Double]) -> Double {
        var total = 0.0
        for i in a.indices { for j in a.indices { total += a[i] * g[i][j] * a[j] } }
        return 0.5 * total
    }

    func testExactSolutionIsFeasibleAndOptimal() {
        var rng = RandomGenerator(seed: 21)
        for trial in 0..<24 {
            let k = 2 + trial % 6
            let vectors = (0..<k).map { _ in (0..<5).map { _ in Double(rng.nextNormal()) } }
            let gram = vectors.map { a in vectors.map { b in zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } } }
            let nu = min(max(1 / (0.6 * Double(k)), 1 / Double(k)), 1)
            let alpha = OneClassSVM.dualCoefficients(gram: gram, nu: nu)
            XCTAssertEqual(alpha.reduce(0, +), nu * Double(k), accuracy: 1e-9)
            XCTAssertTrue(alpha.allSatisfy { $0 >= 0 && $0 <= 1 })
            var x = project(Array(repeating: nu, count: k), sum: nu * Double(k))
            let step = 1 / max(gram.map { $0.map(abs).reduce(0, +) }.max()!, 1e-12)  // 1/λmax bound (Gershgorin)
            for _ in 0..<10_000 {
                let grad = gram.map { row in zip(row, x).reduce(0) { $0 + $1.0 * $1.1 } }
                x = project(zip(x, grad).map { $0 - step * $1 }, sum: nu * Double(k))
            }
            XCTAssertLessThanOrEqual(objective(gram, alpha), objective(gram, x) + 1e-9, "trial \(trial): K = \(k)")
            XCTAssertEqual(objective(gram, alpha), objective(gram, x), accuracy: 1e-5 * max(1, objective(gram, x)), "trial \(trial)")
        }
        let w = OneClassSVM.teacherWeights(vectors: [[1, 0], [0, 1], [1, 1]])
        XCTAssertEqual(w.reduce(0, +), 1, accuracy: 1e-12, "AEKD weights sum to 1")
    }
}
