import Engine
import TestSupport
import XCTest

/// Winograd convolutions against the naive loops and oneDNN's direct convolution: F(2×2, 3×3) and
/// F(4×4, 3×3) inference, F(2×2, 3×3) training passes to second order.
final class WinogradTests: XCTestCase {
    func testMatchesNaiveLoopsWithBiasAndReLU() {
        let cases: [(n: Int, c: Int, k: Int, h: Int, w: Int)] = [
            (2, 8, 16, 8, 8), (1, 16, 8, 7, 5), (3, 24, 32, 4, 4), (2, 8, 8, 1, 1), (1, 64, 64, 16, 16), (2, 8, 8, 2, 3),
        ]
        for (n, c, k, h, w) in cases {
            let g = ConvGeometry(batch: n, inChannels: c, height: h, width: w, outChannels: k, kernel: (3, 3), padding: (1, 1))
            let x = randomTensor(g.inputShape, seed: 1), weight = randomTensor(g.weightShape, seed: 2, scale: 0.3)
            let bias = randomTensor([k], seed: 3)
            // F(4×4, 3×3)'s larger transform constants cost a few more ulps.
            for (outputTile, tolerance) in [(2, Float(2e-6)), (4, Float(1e-5))] {
                let filters = WinogradFilters(weight, outputTile: outputTile)
                let expected = Reference.conv2d(x, weight, bias: bias, g)
                let label = "F(\(outputTile)×\(outputTile), 3×3) n\(n) c\(c) k\(k) \(h)×\(w)"
                let y = x.winogradConvolution(filters, bias: bias)
                XCTAssertFalse(y.hasPlainStorage, "the output stays in NCHW8c")
                assertClose(y, Tensor(doubles: expected, shape: g.outputShape), tolerance: tolerance, "winograd \(label)")
                assertClose(x.winogradConvolution(filters, bias: bias, relu: true), Tensor(doubles: expected.map { max($0, 0) }, shape: g.outputShape),
                            tolerance: tolerance, "winograd + ReLU \(label)")
                assertClose(x.winogradConvolution(filters), Tensor(doubles: Reference.conv2d(x, weight, bias: nil, g), shape: g.outputShape),
                            tolerance: tolerance, "winograd without bias \(label)")
                // From a blocked input (another convolution's output), as inside a network.
                let identity = Tensor.make([c, c, 1, 1]) { p, count in p.initialize(repeating: 0, count: count); for i in 0..<c { p[i * c + i] = 1 } }
                let blocked = x.conv2d(identity)
                assertClose(blocked.winogradConvolution(filters, bias: bias), x.conv2d(weight, bias: bias, padding: (1, 1)), tolerance: tolerance, "blocked input \(label)")
            }
        }
    }

    /// Runs `body` with Winograd chosen for every convolution it applies to (8 channels and up).
    private func withWinogradEverywhere(_ body: () -> Void) {
        WinogradPolicy.minimumChannels = 8
        defer { WinogradPolicy.minimumChannels = 128 }
        body()
    }

    func testTrainingPassesMatchNaiveLoops() {
        let cases: [(n: Int, c: Int, k: Int, h: Int, w: Int)] = [
            (2, 8, 16, 8, 8), (1, 16, 8, 7, 5), (3, 24, 32, 4, 4), (2, 8, 8, 1, 1), (2, 64, 64, 9, 9), (2, 8, 8, 2, 3),
        ]
        defer { WinogradKernels.blockBytes = 8 << 20 }
        // Whole batches, then one image per block (the products accumulate block by block).
        for blockBytes in [8 << 20, 1] {
            WinogradKernels.blockBytes = blockBytes
            withWinogradEverywhere {
                for (n, c, k, h, w) in cases {
                    let g = ConvGeometry(batch: n, inChannels: c, height: h, width: w, outChannels: k, kernel: (3, 3), padding: (1, 1))
                    XCTAssertTrue(WinogradPolicy.computes(g, .forward) && WinogradPolicy.computes(g, .backwardWeights))
                    let x = randomTensor(g.inputShape, seed: 1), weight = randomTensor(g.weightShape, seed: 2, scale: 0.3)
                    let bias = randomTensor([k], seed: 3), gy = randomTensor(g.outputShape, seed: 4)
                    let label = "n\(n) c\(c) k\(k) \(h)×\(w), block of \(blockBytes) bytes"
                    let (dx, dw) = Reference.conv2dBackward(x, weight, gy, g)
                    let y = Tensor.convolutionPass(g, .forward, [x, weight, bias])
                    XCTAssertFalse(y.hasPlainStorage, "the output stays in NCHW8c")
                    assertClose(y, Tensor(doubles: Reference.conv2d(x, weight, bias: bias, g), shape: g.outputShape), tolerance: 2e-6, "forward \(label)")
                    assertClose(Tensor.convolutionPass(g, .backwardData, [gy, weight]), Tensor(doubles: dx, shape: g.inputShape),
                                tolerance: 2e-6, "backward data \(label)")
                    assertClose(Tensor.convolutionPass(g, .backwardWeights, [x, gy]), Tensor(doubles: dw, shape: g.weightShape),
                                tolerance: 2e-6, "backward weights \(label)")
                    // Recorded: gradients of a network's convolution go through the same passes.
                    let xl = x.requiringGrad(), wl = weight.requiringGrad()
                    let grads = gradients(of: (xl.conv2d(wl, padding: (1, 1)) * gy).sum(), wrt: [xl, wl])
                    assertClose(grads[0], Tensor(doubles: dx, shape: g.inputShape), tolerance: 2e-6, "recorded backward data \(label)")
                    assertClose(grads[1], Tensor(doubles: dw, shape: g.weightShape), tolerance: 2e-6, "recorded backward weights \(label)")
                }
            }
        }
    }

    func testSecondOrderThroughWinogradPasses() {
        // Forward, backward-data and backward-weights each differentiated in terms of the others,
        // all three computed by Winograd here: Hessian-vector products against finite differences,
        // and against the same products through oneDNN's direct kernels.
        let g = ConvGeometry(batch: 2, inChannels: 8, height: 5, width: 6, outChannels: 16, kernel: (3, 3), padding: (1, 1))
        let x = randomTensor(g.inputShape, seed: 1), w = randomTensor(g.weightShape, seed: 2, scale: 0.3)
        let target = randomTensor(g.outputShape, seed: 3)
        func loss(_ p: [Tensor]) -> Tensor {
            let y = p[0].conv2d(p[1], padding: (1, 1))
            return ((y - target).square() * y.tanh()).mean()
        }
        let vs = [randomTensor(x.shape, seed: 4), randomTensor(w.shape, seed: 5)]
        func hvp() -> [Tensor] {
            let p = [x, w].map { $0.requiringGrad() }
            let grads = gradients(of: loss(p), wrt: p, createGraph: true)
            return grads + gradients(of: zip(grads, vs).map { ($0.0 * $0.1).sum() }.reduce(Tensor.zeros([]), +), wrt: p)
        }
        WinogradPolicy.isEnabled = false
        let direct = hvp()
        WinogradPolicy.isEnabled = true
        withWinogradEverywhere {
            checkHessianVectorProduct([x, w], h: 3e-3, "winograd 3x3", loss)
            for (i, (a, e)) in zip(hvp(), direct).enumerated() {
                assertClose(a, e, tolerance: 2e-6, "result \(i) (gradients, then Hessian-vector products) against oneDNN")
            }
        }
    }

    func testAppliesOnlyToWhatItComputes() {
        XCTAssertTrue(WinogradFilters.applies(weight: [16, 8, 3, 3]))
        XCTAssertFalse(WinogradFilters.applies(weight: [16, 3, 3, 3]), "3 input channels do not fill a block of 8")
        XCTAssertFalse(WinogradFilters.applies(weight: [16, 8, 1, 1]))
        XCTAssertFalse(WinogradFilters.applies(weight: [16, 8, 3, 3], stride: (2, 2)))
        XCTAssertFalse(WinogradFilters.applies(weight: [16, 8, 3, 3], padding: (0, 0)))
        XCTAssertFalse(WinogradFilters.applies(weight: [16, 8, 3, 3], groups: 2))
    }
}
