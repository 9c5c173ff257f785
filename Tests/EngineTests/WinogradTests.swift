import Engine
import XCTest

/// Winograd F(2×2, 3×3) inference convolution against the naive loops and oneDNN's direct
/// convolution.
final class WinogradTests: XCTestCase {
    func testMatchesNaiveLoopsWithBiasAndReLU() {
        let cases: [(n: Int, c: Int, k: Int, h: Int, w: Int)] = [
            (2, 8, 16, 8, 8), (1, 16, 8, 7, 5), (3, 24, 32, 4, 4), (2, 8, 8, 1, 1), (1, 64, 64, 16, 16), (2, 8, 8, 2, 3),
        ]
        for (n, c, k, h, w) in cases {
            let g = ConvGeometry(batch: n, inChannels: c, height: h, width: w, outChannels: k, kernel: (3, 3), padding: (1, 1))
            let x = randomTensor(g.inputShape, seed: 1), weight = randomTensor(g.weightShape, seed: 2, scale: 0.3)
            let bias = randomTensor([k], seed: 3)
            let filters = WinogradFilters(weight)
            let expected = Reference.conv2d(x, weight, bias: bias, g)
            let label = "n\(n) c\(c) k\(k) \(h)×\(w)"
            let y = x.winogradConvolution(filters, bias: bias)
            XCTAssertFalse(y.hasPlainStorage, "the output stays in NCHW8c")
            assertClose(y, Tensor(doubles: expected, shape: g.outputShape), tolerance: 2e-6, "winograd \(label)")
            assertClose(x.winogradConvolution(filters, bias: bias, relu: true), Tensor(doubles: expected.map { max($0, 0) }, shape: g.outputShape),
                        tolerance: 2e-6, "winograd + ReLU \(label)")
            assertClose(x.winogradConvolution(filters), Tensor(doubles: Reference.conv2d(x, weight, bias: nil, g), shape: g.outputShape),
                        tolerance: 2e-6, "winograd without bias \(label)")
            // From a blocked input (another convolution's output), as inside a network.
            let identity = Tensor.make([c, c, 1, 1]) { p, count in p.initialize(repeating: 0, count: count); for i in 0..<c { p[i * c + i] = 1 } }
            let blocked = x.conv2d(identity)
            assertClose(blocked.winogradConvolution(filters, bias: bias), x.conv2d(weight, bias: bias, padding: (1, 1)), tolerance: 2e-6, "blocked input \(label)")
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
