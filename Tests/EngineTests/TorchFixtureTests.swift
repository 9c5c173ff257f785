import Engine
import TestSupport
import XCTest

/// Reproduces the PyTorch 1.13 fixtures of scripts/make_engine_fixtures.py: each op's output and
/// the gradients of ⟨output, R⟩, and the second-order results of a small network.
final class TorchFixtureTests: XCTestCase {
    nonisolated(unsafe) static let fixtures: [String: Any] = try! loadFixtures("engine_fixtures")

    /// Compares one recorded op case with `op` applied to its inputs.
    func check(_ name: String, tolerance: Float = 1e-4, file: StaticString = #filePath, line: UInt = #line,
               _ op: ([Tensor], [String: Any]) -> Tensor) {
        guard let c = Self.fixtures[name] as? [String: Any] else { return XCTFail("fixture \(name) missing", file: file, line: line) }
        let inputs = (c["inputs"] as! [Any]).map { fixtureTensor($0, requiresGrad: true) }
        let out = op(inputs, c)
        assertClose(out, fixtureTensor(c["output"]), tolerance: tolerance, "\(name) output", file: file, line: line)
        let grads = gradients(of: (out * fixtureTensor(c["projection"])).sum(), wrt: inputs)
        for (i, expected) in (c["grads"] as! [Any]).enumerated() where !(expected is NSNull) {
            assertClose(grads[i], fixtureTensor(expected), tolerance: tolerance, "\(name) gradient \(i)", file: file, line: line)
        }
    }

    func testConvolutions() {
        for name in ["conv_basic", "conv_stride2", "conv_dilated", "conv_grouped", "conv_depthwise", "conv_1x1"] {
            check(name) { x, c in
                let p = c["params"] as! [String: Int]
                return x[0].conv2d(x[1], bias: x.count > 2 ? x[2] : nil, stride: (p["stride"]!, p["stride"]!),
                                   padding: (p["padding"]!, p["padding"]!), dilation: (p["dilation"]!, p["dilation"]!), groups: p["groups"]!)
            }
        }
    }

    func testBatchNorm() {
        check("batch_norm_train") { x, _ in x[0].batchNormTraining(weight: x[1], bias: x[2]).output }
        check("batch_norm_eval") { x, c in
            let r = c["running"] as! [String: Any]
            return x[0].batchNormInference(weight: x[1], bias: x[2], runningMean: fixtureTensor(r["mean"]), runningVariance: fixtureTensor(r["var"]))
        }
    }

    func testPooling() {
        check("max_pool") { x, _ in x[0].maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }
        check("max_pool_2x2") { x, _ in x[0].maxPool2d(kernel: (2, 2)) }
        check("avg_pool") { x, _ in x[0].avgPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }
        check("adaptive_avg_pool") { x, _ in x[0].adaptiveAvgPool2d((3, 2)) }
        check("global_avg_pool") { x, _ in x[0].adaptiveAvgPool2d((1, 1)) }
    }

    func testLinearAlgebraAndSoftmax() {
        check("linear") { x, _ in x[0].linear(x[1], bias: x[2]) }
        check("matmul_batched") { x, _ in x[0].matmul(x[1]) }
        check("softmax") { x, _ in x[0].softmax(axis: 1) }
        check("log_softmax") { x, _ in x[0].logSoftmax(axis: 1) }
    }

    func testLosses() {
        let labels = { (c: [String: Any]) in (c["labels"] as! [Int]) }
        check("cross_entropy") { x, c in crossEntropy(x[0], labels: labels(c)) }
        check("cross_entropy_per_sample") { x, c in crossEntropy(x[0], labels: labels(c), reduction: .none) }
        check("kd_kl") { x, _ in distillationKL(student: x[0], teacher: x[1], temperature: 4) }
        check("kd_kl_per_sample") { x, _ in distillationKL(student: x[0], teacher: x[1], temperature: 4, reduction: .none) }
        check("mse") { x, _ in meanSquaredError(x[0], x[1]) }
        check("mse_per_sample") { x, _ in meanSquaredError(x[0], x[1], reduction: .none) }
    }

    func testSecondOrderOfSmallNetwork() {
        let c = Self.fixtures["second_order"] as! [String: Any]
        let x = fixtureTensor(c["x"]), labels = c["labels"] as! [Int]
        let params = (c["params"] as! [Any]).map { fixtureTensor($0, requiresGrad: true) }
        let vs = (c["v"] as! [Any]).map { fixtureTensor($0) }
        let phi = fixtureTensor(c["phi"], requiresGrad: true)

        func perSampleLoss(_ p: [Tensor]) -> Tensor {
            var h = x.conv2d(p[0], bias: p[1], padding: (1, 1))
            h = h.batchNormTraining(weight: p[2], bias: p[3]).output
            h = h.relu().maxPool2d(kernel: (2, 2))
            return crossEntropy(h.flattened().linear(p[4], bias: p[5]), labels: labels, reduction: .none)
        }

        let loss = perSampleLoss(params).mean()
        XCTAssertEqual(loss.item, Float((c["loss"] as! NSNumber).doubleValue), accuracy: 1e-5)
        let g = gradients(of: loss, wrt: params, createGraph: true)
        for (i, e) in (c["grad"] as! [Any]).enumerated() { assertClose(g[i], fixtureTensor(e), "gradient \(i)") }
        let dot = zip(g, vs).map { ($0.0 * $0.1).sum() }.reduce(Tensor.zeros([]), +)
        let hv = gradients(of: dot, wrt: params)
        // The conv bias feeds training-mode batch norm, which cancels it: its exact gradient and HVP
        // are 0, and both sides hold round-off (~1e-6 next to entries of norm ~20).
        for (i, e) in (c["hvp"] as! [Any]).enumerated() { assertClose(hv[i], fixtureTensor(e), absolute: 1e-4, "Hessian-vector product \(i)") }

        let weighted = (phi * perSampleLoss(params)).mean()
        let g2 = gradients(of: weighted, wrt: params, createGraph: true)
        let dot2 = zip(g2, vs).map { ($0.0 * $0.1).sum() }.reduce(Tensor.zeros([]), +)
        assertClose(gradients(of: dot2, wrt: [phi])[0], fixtureTensor(c["mixed"]), "mixed derivative ∂φ⟨∇θL, v⟩")
    }
}
