import Engine
import TestSupport
import XCTest

/// Finite-difference checks of every op's first derivative.
final class GradientCheckTests: XCTestCase {
    func testElementwiseArithmetic() {
        let a = randomTensor([3, 4], seed: 1), b = randomTensor([4], seed: 2)
        checkGradients([a, b], "add/sub/mul broadcast") { $0[0] * $0[1] + $0[0] - $0[1] * 2 }
        checkGradients([a, b.abs() + 1], "div broadcast") { $0[0] / $0[1] }
        checkGradients([a, randomTensor([3, 1], seed: 3)], "maximum") { $0[0].maximum($0[1]) }
        checkGradients([a.abs() + 0.5], "pow") { $0[0].pow(1.5) }
        // Values kept away from the clamp's kinks, so central differences do not straddle them.
        let spread = Tensor([-1.2, -0.7, -0.3, -0.1, 0.05, 0.2, 0.35, 0.6, 0.9, 1.4, -0.9, 0.42], shape: [3, 4])
        checkGradients([spread], "clamp") { $0[0].clamped(min: -0.5, max: 0.5) * 3 }
    }

    func testUnaryFunctions() {
        let x = randomTensor([2, 5], seed: 4)
        let positive = x.abs() + 0.3
        checkGradients([x], "exp") { $0[0].exp() }
        checkGradients([positive], "log") { $0[0].log() }
        checkGradients([positive], "sqrt") { $0[0].sqrt() }
        checkGradients([positive], "rsqrt") { $0[0].rsqrt() }
        checkGradients([positive], "reciprocal") { $0[0].reciprocal() }
        checkGradients([x], "square") { $0[0].square() }
        checkGradients([x], "sigmoid") { $0[0].sigmoid() }
        checkGradients([x], "tanh") { $0[0].tanh() }
        checkGradients([x], "abs") { $0[0].abs() }
        checkGradients([x], "relu") { $0[0].relu() }
        checkGradients([x], "neg/scale") { -$0[0].scaled(by: 3, shift: 1) }
    }

    func testReductions() {
        let x = randomTensor([2, 3, 4], seed: 5)
        checkGradients([x], "sum axes") { $0[0].sum(axes: [0, 2]) }
        checkGradients([x], "mean keepdims") { $0[0].mean(axes: [1], keepDims: true) }
        checkGradients([x], "variance") { $0[0].variance(axes: [0, 2]) }
        checkGradients([x], "max") { $0[0].max(axis: 1) }
        checkGradients([randomTensor([3, 1], seed: 6)], "expand") { $0[0].expanded(to: [2, 3, 4]) }
    }

    func testShapeOps() {
        let x = randomTensor([2, 3, 4], seed: 7), y = randomTensor([2, 2, 4], seed: 8)
        checkGradients([x], "reshape") { $0[0].reshaped([4, -1]) }
        checkGradients([x], "permute") { $0[0].permuted([2, 0, 1]) }
        checkGradients([x], "transpose") { $0[0].transposed(0, 2) }
        checkGradients([x, y], "concat") { Tensor.concat([$0[0], $0[1]], axis: 1) }
        checkGradients([x, x * 2], "stack") { Tensor.stack([$0[0], $0[1]], axis: 1) }
        checkGradients([x], "slice") { $0[0].slice(axis: 2, 1..<3) }
        checkGradients([x], "pad") { $0[0].padded(axis: 1, before: 1, after: 2) }
        checkGradients([randomTensor([1, 2, 3, 3], seed: 9)], "pad2d") { $0[0].padded2d(top: 1, bottom: 0, left: 2, right: 1) }
        checkGradients([x], "indexSelect") { $0[0].indexSelect(axis: 1, [2, 0, 2]) }
        checkGradients([x], "gather") { $0[0].gather(axis: 2, indices: [0, 3, 1, 1, 2, 0, 3, 3, 1, 0, 0, 2], indexShape: [2, 3, 2]) }
        checkGradients([randomTensor([2, 3, 2], seed: 10)], "scatterAdd") {
            $0[0].scatterAdd(axis: 2, indices: [0, 3, 1, 1, 2, 0, 3, 3, 1, 0, 0, 2], shape: [2, 3, 4])
        }
    }

    func testMatrixProducts() {
        let a = randomTensor([3, 4], seed: 11), b = randomTensor([4, 5], seed: 12)
        checkGradients([a, b], "matmul") { $0[0].matmul($0[1]) }
        checkGradients([a.transposed(), b], "matmul Aᵀ") { $0[0].matmul($0[1], transposeSelf: true) }
        checkGradients([a, b.transposed()], "matmul Bᵀ") { $0[0].matmul($0[1], transposeOther: true) }
        checkGradients([a.transposed(), b.transposed()], "matmul AᵀBᵀ") { $0[0].matmul($0[1], transposeSelf: true, transposeOther: true) }
        checkGradients([randomTensor([2, 3, 4], seed: 13), randomTensor([2, 4, 2], seed: 14)], "batched") { $0[0].matmul($0[1]) }
        checkGradients([a, randomTensor([6, 4], seed: 15), randomTensor([6], seed: 16)], "linear") { $0[0].linear($0[1], bias: $0[2]) }
    }

    func testTableRowProducts() {
        // rowDots and its adjoint rowCombination (CRD's memory scores): values against loops,
        // gradients against finite differences.
        let table = randomTensor([10, 4], seed: 21), rows = [[1, 3, 3], [0, 9, 2]]
        let v = randomTensor([2, 4], seed: 22), w = randomTensor([2, 3], seed: 23)
        let dots = Tensor.rowDots(table, rows, v), combination = Tensor.rowCombination(table, rows, w)
        for b in 0..<2 {
            for k in 0..<3 {
                let e = (0..<4).map { table.scalars[rows[b][k] * 4 + $0] * v.scalars[b * 4 + $0] }.reduce(0, +)
                XCTAssertEqual(dots.scalars[b * 3 + k], e, accuracy: 1e-5)
            }
            for d in 0..<4 {
                let e = (0..<3).map { w.scalars[b * 3 + $0] * table.scalars[rows[b][$0] * 4 + d] }.reduce(0, +)
                XCTAssertEqual(combination.scalars[b * 4 + d], e, accuracy: 1e-5)
            }
        }
        checkGradients([v], "rowDots") { Tensor.rowDots(table, rows, $0[0]) }
        checkGradients([w], "rowCombination") { Tensor.rowCombination(table, rows, $0[0]) }
    }

    func testConvolutionFamily() {
        for (name, g) in KernelOracleTests.convCases.prefix(6) {
            let x = randomTensor(g.inputShape, seed: 17), w = randomTensor(g.weightShape, seed: 18, scale: 0.3)
            let b = randomTensor([g.outChannels], seed: 19)
            checkGradients([x, w, b], h: 5e-3, name) {
                $0[0].conv2d($0[1], bias: $0[2], stride: (g.strideH, g.strideW), padding: (g.padH, g.padW),
                             dilation: (g.dilationH, g.dilationW), groups: g.groups)
            }
        }
    }

    func testBatchNormAndPooling() {
        let x = randomTensor([3, 2, 4, 4], seed: 20, scale: 2)
        let gamma = randomTensor([2], seed: 21).abs() + 0.5, beta = randomTensor([2], seed: 22)
        checkGradients([x, gamma, beta], h: 5e-3, "batch norm train") { $0[0].batchNormTraining(weight: $0[1], bias: $0[2]).output }
        checkGradients([randomTensor([6, 3], seed: 23), randomTensor([3], seed: 24), beta.slice(axis: 0, 0..<1).expanded(to: [3])], h: 5e-3, "batch norm 1d") {
            $0[0].batchNormTraining(weight: $0[1], bias: $0[2]).output
        }
        let rm = randomTensor([2], seed: 25), rv = randomTensor([2], seed: 26).abs() + 0.5
        checkGradients([x, gamma, beta], "batch norm eval") {
            $0[0].batchNormInference(weight: $0[1], bias: $0[2], runningMean: rm, runningVariance: rv)
        }
        checkGradients([x, gamma, beta], "batch norm eval + fused ReLU") {
            $0[0].batchNormInference(weight: $0[1], bias: $0[2], runningMean: rm, runningVariance: rv, fusedReLU: true)
        }
        XCTAssertEqual(x.batchNormInference(weight: gamma, bias: beta, runningMean: rm, runningVariance: rv, fusedReLU: true).scalars,
                       x.batchNormInference(weight: gamma, bias: beta, runningMean: rm, runningVariance: rv).relu().scalars,
                       "the fused ReLU equals a separate one")
        // Distinct values 0.05 apart, so no window has a near-tie for central differences to cross.
        var generator = RandomGenerator(seed: 27)
        let p = Tensor(Array(0..<196).shuffled(using: &generator).map { Float($0) * 0.05 - 5 }, shape: [2, 2, 7, 7])
        checkGradients([p], "max pool") { $0[0].maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }
        checkGradients([p], "avg pool") { $0[0].avgPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }
        checkGradients([p], "adaptive avg pool") { $0[0].adaptiveAvgPool2d((3, 2)) }
    }

    func testSoftmaxAndLosses() {
        let x = randomTensor([4, 6], seed: 28, scale: 2), t = randomTensor([4, 6], seed: 29, scale: 2)
        checkGradients([x], "softmax") { $0[0].softmax(axis: 1) }
        checkGradients([x], "log softmax") { $0[0].logSoftmax(axis: 1) }
        checkGradients([randomTensor([2, 3, 4], seed: 30)], "softmax middle axis") { $0[0].softmax(axis: 1) }
        checkGradients([x], "cross entropy") { crossEntropy($0[0], labels: [1, 5, 0, 2]) }
        checkGradients([x], "cross entropy per sample") { crossEntropy($0[0], labels: [1, 5, 0, 2], reduction: .none) }
        checkGradients([x, t], "KD KL") { distillationKL(student: $0[0], teacher: $0[1], temperature: 4) }
        checkGradients([x, t], "KD KL per sample") { distillationKL(student: $0[0], teacher: $0[1], temperature: 4, reduction: .none) }
        checkGradients([x, t], "MSE") { meanSquaredError($0[0], $0[1]) }
        checkGradients([x, t], "MSE per sample") { meanSquaredError($0[0], $0[1], reduction: .none) }
    }

    func testGradientsSkipUnusedAndUnrequestedInputs() {
        let a = randomTensor([3], seed: 31, requiresGrad: true), b = randomTensor([3], seed: 32, requiresGrad: true)
        let unused = randomTensor([2], seed: 33, requiresGrad: true)
        let g = gradients(of: (a * a).sum(), wrt: [a, unused])
        assertClose(g[0], a * 2)
        XCTAssertEqual(g[1].scalars, [0, 0])
        XCTAssertNil(g[0].gradFunction, "without createGraph the gradient is a constant")
        // b is not requested: its gradient is never formed, only a's.
        let g2 = gradients(of: (a * b).sum(), wrt: [a])
        assertClose(g2[0], b)
    }

    func testNoGradScopeRecordsNothing() {
        let a = randomTensor([3], seed: 34, requiresGrad: true)
        let y = withoutGrad { (a * 2).exp() }
        XCTAssertNil(y.gradFunction)
        XCTAssertFalse(y.requiresGrad)
        XCTAssertFalse(a.detached().requiresGrad)
    }
}
