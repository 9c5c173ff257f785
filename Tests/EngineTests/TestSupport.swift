import Engine
import Foundation
import TestSupport
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
