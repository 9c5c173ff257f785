import Engine
import Foundation
import XCTest

/// Loads a committed fixture file (written by scripts/make_engine_fixtures.py).
func loadFixtures(_ name: String) throws -> [String: Any] {
    let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
                            "fixture \(name).json is missing; run scripts/make_engine_fixtures.py")
    return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
}

/// A tensor from a fixture entry `{"shape": [...], "data": [...]}`.
func fixtureTensor(_ any: Any?, requiresGrad: Bool = false) -> Tensor {
    let dict = any as! [String: Any]
    let shape = (dict["shape"] as! [NSNumber]).map(\.intValue)
    let data = (dict["data"] as! [NSNumber]).map(\.floatValue)
    return Tensor(data, shape: shape, requiresGrad: requiresGrad)
}

/// Asserts two tensors have one shape and that the L2 norm of their difference is at most
/// `tolerance` relative to the expected tensor's norm, or at most `absolute` (for results that are
/// zero up to round-off, such as a bias gradient through training-mode batch norm).
func assertClose(_ actual: Tensor, _ expected: Tensor, tolerance: Float = 1e-4, absolute: Double = 1e-6, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "shape \(message)", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let a = actual.scalars, e = expected.scalars
    var diff: Double = 0, norm: Double = 0
    for i in 0..<a.count { diff += Double(a[i] - e[i]) * Double(a[i] - e[i]); norm += Double(e[i]) * Double(e[i]) }
    let rel = diff.squareRoot() / max(norm.squareRoot(), 1e-12)
    XCTAssertFalse(a.contains { $0.isNaN }, "NaN in result \(message)", file: file, line: line)
    if diff.squareRoot() > absolute {
        XCTAssertLessThanOrEqual(rel, Double(tolerance), "relative L2 error \(rel) \(message)", file: file, line: line)
    }
}

/// A fixed pseudo-random tensor for tests.
func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1, requiresGrad: Bool = false) -> Tensor {
    var g = RandomGenerator(seed: seed)
    let t = Tensor.randomNormal(shape, std: scale, generator: &g)
    return requiresGrad ? t.requiringGrad() : t
}

/// Finite-difference gradient check of `f` at `inputs`: compares the autodiff gradient of
/// `⟨f(inputs), R⟩` (R fixed random) with central differences computed in Float32 with step `h`.
func checkGradients(_ inputs: [Tensor], h: Float = 1e-2, tolerance: Float = 2e-2, _ message: String = "",
                    file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) -> Tensor) {
    let leaves = inputs.map { $0.requiringGrad() }
    let out = f(leaves)
    let r = randomTensor(out.shape, seed: 99)
    let analytic = gradients(of: (out * r).sum(), wrt: leaves)
    for (k, x) in inputs.enumerated() {
        var numeric = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            func value(_ delta: Float) -> Double {
                var v = x.scalars
                v[i] += delta
                var args = inputs
                args[k] = Tensor(v, shape: x.shape)
                let y = withoutGrad { f(args) }
                return zip(y.scalars, r.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            numeric[i] = Float((value(h) - value(-h)) / Double(2 * h))
        }
        assertClose(analytic[k], Tensor(numeric, shape: x.shape), tolerance: tolerance, "input \(k) \(message)", file: file, line: line)
    }
}

/// Second-order check: the Hessian-vector product `∇(⟨∇L, v⟩)` from a recorded backward pass against
/// central differences of the first-order gradient along `v`.
func checkHessianVectorProduct(_ inputs: [Tensor], h: Float = 1e-2, tolerance: Float = 3e-2, _ message: String = "",
                               file: StaticString = #filePath, line: UInt = #line, _ loss: ([Tensor]) -> Tensor) {
    let leaves = inputs.map { $0.requiringGrad() }
    let vs = inputs.enumerated().map { randomTensor($0.element.shape, seed: UInt64(500 + $0.offset)) }
    let g = gradients(of: loss(leaves), wrt: leaves, createGraph: true)
    let dot = zip(g, vs).map { ($0.0 * $0.1).sum() }.reduce(Tensor.zeros([])) { $0 + $1 }
    let hv = gradients(of: dot, wrt: leaves)
    func grad(at delta: Float) -> [Tensor] {
        let shifted = zip(inputs, vs).map { ($0.0 + $0.1 * delta).detached().requiringGrad() }
        return gradients(of: loss(shifted), wrt: shifted)
    }
    let plus = grad(at: h), minus = grad(at: -h)
    for k in 0..<inputs.count {
        let numeric = withoutGrad { (plus[k] - minus[k]) / (2 * h) }
        assertClose(hv[k], numeric, tolerance: tolerance, "HVP input \(k) \(message)", file: file, line: line)
    }
}
