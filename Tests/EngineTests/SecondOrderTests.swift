import Engine
import TestSupport
import XCTest

/// Second-order checks: Hessian-vector products through recorded backward passes against finite
/// differences of first-order gradients.
final class SecondOrderTests: XCTestCase {
    func testConvolutionHVPForEveryGroupingAndStride() {
        for (name, g) in KernelOracleTests.convCases.prefix(7) {
            let x = randomTensor(g.inputShape, seed: 1), w = randomTensor(g.weightShape, seed: 2, scale: 0.3)
            let target = randomTensor(g.outputShape, seed: 3)
            checkHessianVectorProduct([x, w], name) { p in
                let y = p[0].conv2d(p[1], stride: (g.strideH, g.strideW), padding: (g.padH, g.padW),
                                    dilation: (g.dilationH, g.dilationW), groups: g.groups)
                return ((y - target).square() * y.tanh()).mean()
            }
        }
    }

    func testBatchNormTrainingHVP() {
        let x = randomTensor([4, 3, 3, 3], seed: 4, scale: 1.5)
        let gamma = randomTensor([3], seed: 5).abs() + 0.5, beta = randomTensor([3], seed: 6)
        let target = randomTensor([4, 3, 3, 3], seed: 7)
        checkHessianVectorProduct([x, gamma, beta], h: 5e-3) { p in
            let y = p[0].batchNormTraining(weight: p[1], bias: p[2]).output
            return ((y - target).square() * (y * 0.5).sigmoid()).mean()
        }
    }

    func testFusedBatchNormReLUMatchesUnfusedToSecondOrder() {
        // Finite differences straddle ReLU's kink here, so the oracle is the unfused composition,
        // whose parts are each checked against finite differences above.
        let x = randomTensor([4, 3, 3, 3], seed: 14, scale: 1.5)
        let gamma = randomTensor([3], seed: 15).abs() + 0.5, beta = randomTensor([3], seed: 16)
        let target = randomTensor([4, 3, 3, 3], seed: 17)
        let vs = [x, gamma, beta].enumerated().map { randomTensor($0.element.shape, seed: UInt64(60 + $0.offset)) }
        func hvp(fused: Bool) -> [Tensor] {
            let p = [x, gamma, beta].map { $0.requiringGrad() }
            let y = fused ? p[0].batchNormTraining(weight: p[1], bias: p[2], fusedReLU: true).output
                          : p[0].batchNormTraining(weight: p[1], bias: p[2]).output.relu()
            let loss = ((y - target).square() * (y * 0.5).sigmoid()).mean()
            let g = gradients(of: loss, wrt: p, createGraph: true)
            return g + gradients(of: zip(g, vs).map { ($0.0 * $0.1).sum() }.reduce(Tensor.zeros([]), +), wrt: p)
        }
        for (i, (a, e)) in zip(hvp(fused: true), hvp(fused: false)).enumerated() {
            assertClose(a, e, tolerance: 1e-5, "result \(i) (gradients, then Hessian-vector products)")
        }
    }

    /// The fused kernels that evaluate the derivative of batch norm's backward (a second-order pass
    /// that is not recorded) equal the composite formula (the same pass recorded), on plain and
    /// channel-blocked inputs, with and without a fused ReLU, for upstream gradients of ∂x, ∂γ and
    /// ∂β each alone and together.
    func testFusedBatchNormDoubleBackwardEqualsTheComposite() {
        for (channels, size, blocked, relu) in [(3, 3, false, false), (3, 3, false, true), (5, 4, false, true),
                                                (16, 6, true, false), (32, 5, true, true), (16, 8, true, true)] {
            let input = randomTensor([4, 3, size, size], seed: 80)
            let w = randomTensor([channels, 3, 3, 3], seed: 81, scale: 0.4)
            let conv = input.conv2d(w, padding: (1, 1))
            let x = blocked ? conv : Tensor(conv.scalars, shape: conv.shape)
            if blocked { XCTAssertTrue(x.isChannelBlocked, "channels \(channels): a blocked input") }
            let gamma = randomTensor([channels], seed: 82).abs() + 0.5, beta = randomTensor([channels], seed: 83)
            let target = randomTensor(x.shape, seed: 84)
            let vx = randomTensor(x.shape, seed: 85), vg = randomTensor([channels], seed: 86), vb = randomTensor([channels], seed: 87)
            for upstream in ["x", "gamma", "beta", "all"] {
                func secondOrder(recorded: Bool) -> [Tensor] {
                    let p = [x, gamma, beta].map { $0.requiringGrad() }
                    let y = p[0].batchNormTraining(weight: p[1], bias: p[2], fusedReLU: relu).output
                    let loss = ((y - target).square() * (y * 0.5).sigmoid()).mean()
                    let g = gradients(of: loss, wrt: p, createGraph: true)
                    var terms: [Tensor] = []
                    if upstream == "x" || upstream == "all" { terms.append((g[0] * vx).sum()) }
                    if upstream == "gamma" || upstream == "all" { terms.append((g[1] * vg).sum()) }
                    if upstream == "beta" || upstream == "all" { terms.append((g[2] * vb).sum()) }
                    return gradients(of: terms.reduce(Tensor.zeros([]), +), wrt: p, createGraph: recorded)
                }
                for (i, (fused, composite)) in zip(secondOrder(recorded: false), secondOrder(recorded: true)).enumerated() {
                    assertClose(fused, composite, tolerance: 2e-5,
                                "channels \(channels) \(size)×\(size) blocked \(blocked) relu \(relu), upstream \(upstream), result \(i)")
                }
            }
        }
    }

    func testPoolingReluLinearSoftmaxHVP() {
        let x = randomTensor([2, 2, 6, 6], seed: 8)
        let w = randomTensor([3, 2 * 3 * 3], seed: 9, scale: 0.5), b = randomTensor([3], seed: 10)
        checkHessianVectorProduct([x, w, b], h: 5e-3, "max pool") { p in
            let h = p[0].maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1)).relu()
            return crossEntropy(h.flattened().linear(p[1], bias: p[2]), labels: [0, 2])
        }
        checkHessianVectorProduct([x, w, b], h: 5e-3, "avg pool") { p in
            let h = p[0].avgPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))
            return crossEntropy(h.flattened().linear(p[1], bias: p[2]), labels: [1, 2])
        }
        checkHessianVectorProduct([x, w, b], h: 5e-3, "adaptive pool + softmax") { p in
            let h = p[0].adaptiveAvgPool2d((3, 3)).square()
            return (h.flattened().linear(p[1], bias: p[2]).softmax(axis: 1) * randomTensor([2, 3], seed: 11)).sum()
        }
    }

    func testLossesHVP() {
        let s = randomTensor([3, 5], seed: 12, scale: 2), t = randomTensor([3, 5], seed: 13, scale: 2)
        checkHessianVectorProduct([s, t], "KD KL") { distillationKL(student: $0[0], teacher: $0[1], temperature: 4) }
        checkHessianVectorProduct([s, t], "MSE per sample weighted") {
            (meanSquaredError($0[0], $0[1], reduction: .none) * $0[0].slice(axis: 1, 0..<1).reshaped([3])).mean()
        }
        checkHessianVectorProduct([s], "cross entropy") { crossEntropy($0[0], labels: [4, 0, 2]) }
        checkHessianVectorProduct([s], "log softmax + max") { $0[0].logSoftmax(axis: 1).square().sum() + $0[0].max(axis: 1).square().sum() }
    }

    func testTableRowProductsHVP() {
        // CRD's scores: normalised embeddings against memory rows, through exp, to second order.
        let table = randomTensor([10, 4], seed: 24), rows = [[1, 3, 3], [0, 9, 2]]
        checkHessianVectorProduct([randomTensor([2, 4], seed: 25)], "rowDots") { p in
            let unit = p[0] / (p[0].square().sum(axes: [1], keepDims: true) + 1e-6).sqrt()
            return (Tensor.rowDots(table, rows, unit) / 0.5).exp().sum()
        }
        checkHessianVectorProduct([randomTensor([2, 3], seed: 26)], "rowCombination") { p in
            Tensor.rowCombination(table, rows, p[0].softmax(axis: 1)).square().sum()
        }
    }

    func testThirdOrderOfPolynomial() {
        // d³/dx³ of x⁴ = 24x: differentiate three times through recorded passes.
        let x = Tensor([1.5, -2], shape: [2], requiresGrad: true)
        let g1 = gradients(of: x.pow(4).sum(), wrt: [x], createGraph: true)[0]
        let g2 = gradients(of: g1.sum(), wrt: [x], createGraph: true)[0]
        let g3 = gradients(of: g2.sum(), wrt: [x])[0]
        assertClose(g1, Tensor([4 * 3.375, 4 * -8], shape: [2]), tolerance: 1e-5)
        assertClose(g2, Tensor([12 * 2.25, 12 * 4], shape: [2]), tolerance: 1e-5)
        assertClose(g3, Tensor([24 * 1.5, 24 * -2], shape: [2]), tolerance: 1e-5)
    }
}
