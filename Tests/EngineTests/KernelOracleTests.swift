import Engine
import TestSupport
import XCTest

/// Every fast kernel against its naive reference loop.
final class KernelOracleTests: XCTestCase {
    static let convCases: [(name: String, g: ConvGeometry)] = [
        ("3x3 s1 p1", ConvGeometry(batch: 2, inChannels: 3, height: 8, width: 8, outChannels: 5, kernel: (3, 3), padding: (1, 1))),
        ("3x3 s2 p1", ConvGeometry(batch: 2, inChannels: 4, height: 9, width: 7, outChannels: 6, kernel: (3, 3), stride: (2, 2), padding: (1, 1))),
        ("1x1 s2", ConvGeometry(batch: 1, inChannels: 8, height: 6, width: 6, outChannels: 4, kernel: (1, 1), stride: (2, 2))),
        ("5x5 p2 dil", ConvGeometry(batch: 1, inChannels: 2, height: 11, width: 10, outChannels: 3, kernel: (3, 3), padding: (2, 2), dilation: (2, 2))),
        ("grouped", ConvGeometry(batch: 2, inChannels: 6, height: 5, width: 5, outChannels: 9, kernel: (3, 3), padding: (1, 1), groups: 3)),
        ("grouped 1x1 8x8", ConvGeometry(batch: 2, inChannels: 12, height: 8, width: 8, outChannels: 24, kernel: (1, 1), groups: 3)),
        ("depthwise s2", ConvGeometry(batch: 2, inChannels: 8, height: 8, width: 8, outChannels: 8, kernel: (3, 3), stride: (2, 2), padding: (1, 1), groups: 8)),
        ("7x7 s2 p3", ConvGeometry(batch: 1, inChannels: 3, height: 16, width: 16, outChannels: 4, kernel: (7, 7), stride: (2, 2), padding: (3, 3))),
        ("wide 32ch", ConvGeometry(batch: 2, inChannels: 32, height: 6, width: 6, outChannels: 64, kernel: (3, 3), padding: (1, 1))),
    ]

    func testConvolutionAgainstNaiveLoops() {
        for chooseLayout in [true, false] {
            ConvolutionKernels.letLibraryChooseLayout = chooseLayout
            defer { ConvolutionKernels.letLibraryChooseLayout = true }
            for (name, g) in Self.convCases {
                let x = randomTensor(g.inputShape, seed: 1), w = randomTensor(g.weightShape, seed: 2, scale: 0.3)
                let b = randomTensor([g.outChannels], seed: 3)
                let y = x.conv2d(w, bias: b, stride: (g.strideH, g.strideW), padding: (g.padH, g.padW),
                                 dilation: (g.dilationH, g.dilationW), groups: g.groups)
                let label = "\(name), library layout \(chooseLayout)"
                let expected = Tensor(doubles: Reference.conv2d(x, w, bias: b, g), shape: g.outputShape)
                assertClose(y, expected, tolerance: 1e-5, "forward \(label)")
                let fused = x.conv2d(w, bias: b, stride: (g.strideH, g.strideW), padding: (g.padH, g.padW),
                                     dilation: (g.dilationH, g.dilationW), groups: g.groups, fusedReLU: true)
                assertClose(fused, expected.relu(), tolerance: 1e-5, "forward with a fused ReLU \(label)")
                let gy = randomTensor(g.outputShape, seed: 4)
                let (dx, dw) = Reference.conv2dBackward(x, w, gy, g)
                let xl = x.requiringGrad(), wl = w.requiringGrad()
                let y2 = xl.conv2d(wl, stride: (g.strideH, g.strideW), padding: (g.padH, g.padW),
                                   dilation: (g.dilationH, g.dilationW), groups: g.groups)
                let gr = gradients(of: (y2 * gy).sum(), wrt: [xl, wl])
                assertClose(gr[0], Tensor(doubles: dx, shape: g.inputShape), tolerance: 1e-5, "backward data \(label)")
                assertClose(gr[1], Tensor(doubles: dw, shape: g.weightShape), tolerance: 1e-5, "backward weights \(label)")
            }
        }
    }

    func testBatchNormAgainstNaiveLoop() {
        for shape in [[4, 3, 5, 5], [2, 16, 9, 9], [8, 6]] {
            let x = randomTensor(shape, seed: 5, scale: 2) + 0.7
            let gamma = randomTensor([shape[1]], seed: 6) , beta = randomTensor([shape[1]], seed: 7)
            let (y, mean, variance) = x.batchNormTraining(weight: gamma, bias: beta)
            assertClose(y, Tensor(doubles: Reference.batchNormTraining(x, gamma: gamma, beta: beta, eps: 1e-5), shape: shape), tolerance: 1e-5, "\(shape)")
            let axes = shape.count == 4 ? [0, 2, 3] : [0]
            assertClose(mean, x.mean(axes: axes), tolerance: 1e-5)
            assertClose(variance, x.variance(axes: axes), tolerance: 1e-5)
        }
    }

    func testPoolingAgainstNaiveLoops() {
        let x = randomTensor([2, 3, 11, 9], seed: 8)
        for (k, s, p) in [(3, 2, 1), (2, 2, 0), (3, 1, 1), (4, 4, 0)] {
            let maxOut = x.maxPool2d(kernel: (k, k), stride: (s, s), padding: (p, p))
            assertClose(maxOut, Tensor(doubles: Reference.pool(x, kernel: k, stride: s, padding: p, max: true), shape: maxOut.shape), tolerance: 1e-6, "max \(k) \(s) \(p)")
            let avgOut = x.avgPool2d(kernel: (k, k), stride: (s, s), padding: (p, p))
            assertClose(avgOut, Tensor(doubles: Reference.pool(x, kernel: k, stride: s, padding: p, max: false), shape: avgOut.shape), tolerance: 1e-6, "avg \(k) \(s) \(p)")
        }
        // Adaptive pooling to a size that divides the input equals plain average pooling.
        let y = randomTensor([2, 3, 8, 8], seed: 9)
        assertClose(y.adaptiveAvgPool2d((4, 4)), y.avgPool2d(kernel: (2, 2)), tolerance: 1e-6)
        assertClose(y.adaptiveAvgPool2d((1, 1)), y.mean(axes: [2, 3], keepDims: true), tolerance: 1e-6)
    }

    func testMatmulAgainstNaiveLoop() {
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (64, 100, 37), (17, 1, 130)] {
            let a = randomTensor([m, k], seed: 10), b = randomTensor([k, n], seed: 11)
            let expected = Tensor(doubles: Reference.matmul(a.scalars, b.scalars, m: m, n: n, k: k), shape: [m, n])
            assertClose(a.matmul(b), expected, tolerance: 1e-5, "\(m)x\(k)·\(k)x\(n)")
            assertClose(a.transposed().matmul(b, transposeSelf: true), expected, tolerance: 1e-5, "Aᵀ flag")
            assertClose(a.matmul(b.transposed(), transposeOther: true), expected, tolerance: 1e-5, "Bᵀ flag")
            assertClose(a.transposed().matmul(b.transposed(), transposeSelf: true, transposeOther: true), expected, tolerance: 1e-5, "both flags")
        }
    }

    func testBroadcastingArithmeticAgainstNaiveLoop() {
        let a = randomTensor([2, 3, 4, 5], seed: 12)
        for bShape in [[1, 3, 1, 1], [5], [2, 1, 4, 1], [], [3, 1, 5], [2, 3, 4, 5]] {
            let b = randomTensor(bShape, seed: 13)
            let out = a * b + a / (b.abs() + 1) - b
            let bs = b.scalars, bStrides = bShape.isEmpty ? [] : (0..<bShape.count).map { i in bShape[(i + 1)...].reduce(1, *) }
            var expected = [Float](repeating: 0, count: a.count)
            let av = a.scalars
            for i in 0..<a.count {
                let idx = [i / 60, (i / 20) % 3, (i / 5) % 4, i % 5]
                var off = 0
                for d in 0..<bShape.count where bShape[d] != 1 { off += idx[4 - bShape.count + d] * bStrides[d] }
                let bv = bs[off]
                expected[i] = av[i] * bv + av[i] / (abs(bv) + 1) - bv
            }
            assertClose(out, Tensor(expected, shape: a.shape), tolerance: 1e-6, "b shape \(bShape)")
        }
        // Reduction over non-adjacent axes against a loop.
        let s = a.sum(axes: [0, 2], keepDims: true)
        var expected = [Float](repeating: 0, count: 15)
        for i in 0..<a.count { expected[((i / 20) % 3) * 5 + i % 5] += a.scalars[i] }
        assertClose(s, Tensor(expected, shape: [1, 3, 1, 5]), tolerance: 1e-6)
    }

    func testLargeParallelElementwiseMatchesSerialMeaning() {
        let a = randomTensor([3, 64, 33, 33], seed: 14), b = randomTensor([1, 64, 1, 1], seed: 15)
        let out = (a * b).relu()
        let av = a.scalars, bv = b.scalars, ov = out.scalars
        for i in stride(from: 0, to: a.count, by: 97) {
            let c = (i / (33 * 33)) % 64
            XCTAssertEqual(ov[i], max(av[i] * bv[c], 0))
        }
    }
}

/// Ops on activations held in oneDNN's channel-blocked layouts (a convolution's output) give what
/// the same ops give on plain copies.
final class BlockedLayoutTests: XCTestCase {
    func testBatchNormAndElementwiseOnConvolutionOutputsMatchPlain() {
        for channels in [8, 16, 32] {
            let x = randomTensor([4, 3, 6, 6], seed: 40)
            let w = randomTensor([channels, 3, 3, 3], seed: 41, scale: 0.3)
            let gamma = randomTensor([channels], seed: 42).abs() + 0.5, beta = randomTensor([channels], seed: 43)
            let gy = randomTensor([4, channels, 6, 6], seed: 44)

            let blocked = x.conv2d(w, padding: (1, 1))
            XCTAssertFalse(blocked.hasPlainStorage, "a convolution's output stays in oneDNN's layout")
            let plain = Tensor(x.conv2d(w, padding: (1, 1)).scalars, shape: blocked.shape)   // same values, plain

            func run(_ input: Tensor) -> [Tensor] {
                let leaf = input.requiringGrad(), g = gamma.requiringGrad(), b = beta.requiringGrad()
                let (y, mean, variance) = leaf.batchNormTraining(weight: g, bias: b)
                let z = (y.relu() + leaf * 0.5).scaled(by: 2, shift: 0.1)
                let grads = gradients(of: z, seed: gy, wrt: [leaf, g, b])
                return [z, mean, variance] + grads
            }
            // Fused BN+ReLU equals BN then ReLU, values and gradients.
            let leafA = blocked.requiringGrad(), leafB = blocked.requiringGrad()
            let fused = leafA.batchNormTraining(weight: gamma, bias: beta, fusedReLU: true).output
            let unfused = leafB.batchNormTraining(weight: gamma, bias: beta).output.relu()
            assertClose(fused, unfused, tolerance: 1e-6, "fused ReLU forward, channels \(channels)")
            assertClose(gradients(of: fused, seed: gy, wrt: [leafA])[0], gradients(of: unfused, seed: gy, wrt: [leafB])[0],
                        tolerance: 1e-5, "fused ReLU backward, channels \(channels)")

            let fromBlocked = run(blocked)
            // oneDNN blocks 16 and 32 channels on every x86 CPU; 8 channels only where its blocks are
            // 8 wide (AVX2; with AVX-512 it keeps them channels-last, which the Swift kernels read plain).
            if channels >= 16 { XCTAssertTrue(blocked.isChannelBlocked, "channels \(channels): a channel-blocked convolution output") }
            if blocked.isChannelBlocked {
                XCTAssertFalse(fromBlocked[0].hasPlainStorage, "batch norm and element-wise maps ran in the blocked layout, channels \(channels)")
                XCTAssertFalse(fromBlocked[3].hasPlainStorage, "the input gradient was formed in the blocked layout, channels \(channels)")
            }
            let fromPlain = run(plain)
            for (i, (a, e)) in zip(fromBlocked, fromPlain).enumerated() {
                assertClose(a, e, tolerance: 1e-5, "channels \(channels), result \(i)")
            }
        }
    }

    /// A grouped convolution of 20 channels per group gets a layout from oneDNN that batch norm's
    /// kernels cannot run in (NCHW4c with AVX-512); once batch norm has made the plain copy, that
    /// layout is not kept beside it, a convolution of batch norm's plain output does not keep such a
    /// conversion either, and the values, the batch norm and the convolutions are what plain inputs
    /// give.
    func testUnusableChannelBlockingIsNotKeptBesideThePlainCopy() {
        let x = randomTensor([4, 60, 6, 6], seed: 50), w = randomTensor([60, 20, 1, 1], seed: 51, scale: 0.3)
        let w2 = randomTensor([60, 20, 1, 1], seed: 52, scale: 0.3)
        let gamma = randomTensor([60], seed: 53).abs() + 0.5, beta = randomTensor([60], seed: 54)
        let y = x.conv2d(w, groups: 3)
        let unusable = y.holdsUnusableChannelBlocking
        let plain = Tensor(x.conv2d(w, groups: 3).scalars, shape: y.shape)
        let normalised = y.batchNormTraining(weight: gamma, bias: beta).output
        XCTAssertTrue(y.hasPlainStorage)
        XCTAssertFalse(y.holdsUnusableChannelBlocking, "the unusable layout (held before: \(unusable)) was dropped")
        XCTAssertEqual(y.scalars, plain.scalars)
        XCTAssertEqual(normalised.scalars, plain.batchNormTraining(weight: gamma, bias: beta).output.scalars)
        XCTAssertEqual(y.conv2d(w2, groups: 3).scalars, plain.conv2d(w2, groups: 3).scalars)
        XCTAssertFalse(normalised.holdsUnusableChannelBlocking && normalised.hasPlainStorage,
                       "a convolution reading a plain input converts it for the call, not into a second copy")
        let z = normalised.conv2d(w2, groups: 3)
        XCTAssertFalse(normalised.holdsUnusableChannelBlocking && normalised.hasPlainStorage)
        XCTAssertEqual(z.scalars, plain.batchNormTraining(weight: gamma, bias: beta).output.conv2d(w2, groups: 3).scalars)
    }

    /// `channelsGathered` on a blocked convolution output stays blocked and equals, bit for bit,
    /// the same gather on plain values and the reshape–permute–reshape of a channel shuffle; its
    /// gradient is the inverse gather, and it is differentiable again (second order).
    func testChannelGatherInBlockedLayoutMatchesPlainAndTheShuffle() {
        for channels in [8, 16, 48] {
            let x = randomTensor([3, 3, 5, 5], seed: 60)
            let w = randomTensor([channels, 3, 3, 3], seed: 61, scale: 0.3)
            let blocked = x.conv2d(w, padding: (1, 1))
            let plain = Tensor(blocked.scalars, shape: blocked.shape)
            let groups = channels / 8 == 1 ? 2 : 4, perGroup = channels / groups
            let order = (0..<channels).map { j in (j % groups) * perGroup + j / groups }
            let shuffled = plain.reshaped([3, groups, perGroup, 5, 5]).permuted([0, 2, 1, 3, 4]).reshaped(plain.shape)
            let fromBlocked = blocked.channelsGathered(order), fromPlain = plain.channelsGathered(order)
            if blocked.isChannelBlocked { XCTAssertFalse(fromBlocked.hasPlainStorage, "channels \(channels): the gather stayed blocked") }
            XCTAssertEqual(fromBlocked.scalars, shuffled.scalars, "channels \(channels): blocked gather = the shuffle")
            XCTAssertEqual(fromPlain.scalars, shuffled.scalars, "channels \(channels): plain gather = the shuffle")

            let gy = randomTensor(plain.shape, seed: 62)
            let leafA = blocked.requiringGrad(), leafB = plain.requiringGrad()
            let gA = gradients(of: leafA.channelsGathered(order), seed: gy, wrt: [leafA])[0]
            let gB = gradients(of: leafB.reshaped([3, groups, perGroup, 5, 5]).permuted([0, 2, 1, 3, 4]).reshaped(plain.shape), seed: gy, wrt: [leafB])[0]
            XCTAssertEqual(gA.scalars, gB.scalars, "channels \(channels): gradient = the shuffle's")
        }
        let small = randomTensor([2, 6, 3, 3], seed: 63)
        checkGradients([small], "channelsGathered") { $0[0].channelsGathered([3, 0, 4, 1, 5, 2]).square() }
        checkHessianVectorProduct([small], "channelsGathered") { ($0[0].channelsGathered([3, 0, 4, 1, 5, 2]).square() * $0[0]).sum() }
    }

    func testPoolingBroadcastsAndSumsInBlockedLayoutMatchPlain() {
        for channels in [8, 16] {
            let x = randomTensor([3, 3, 7, 7], seed: 50)
            let w = randomTensor([channels, 3, 3, 3], seed: 51, scale: 0.3)
            let blocked = x.conv2d(w, padding: (1, 1))
            XCTAssertFalse(blocked.hasPlainStorage)
            let plain = Tensor(x.conv2d(w, padding: (1, 1)).scalars, shape: blocked.shape)
            let perChannel = randomTensor([1, channels, 1, 1], seed: 52), perPosition = randomTensor([3, 1, 7, 1], seed: 53)
            let gy = randomTensor([3, channels, 4, 4], seed: 54), v = randomTensor([3, channels, 7, 7], seed: 55)

            // Max pooling (first and second order), broadcasts with both operand orders, per-channel
            // sums, totals and the expansion that differentiates a sum.
            func run(_ input: Tensor) -> [Tensor] {
                let leaf = input.requiringGrad(), c = perChannel.requiringGrad()
                let pooled = leaf.maxPool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1))
                let mixed = (leaf * c - perPosition) / (c.square() + 1) + perChannel - leaf
                let sums = mixed.sum(axes: [0, 2, 3], keepDims: true)
                let total = (mixed * leaf.detached()).sum()
                let loss = (pooled * gy).sum() + (sums * perChannel).sum() + total + (mixed - mixed.mean(axes: [0, 2, 3], keepDims: true)).square().sum()
                let g = gradients(of: loss, wrt: [leaf, c], createGraph: true)
                let hv = gradients(of: (g[0] * v).sum() + g[1].sum(), wrt: [leaf, c])
                return [pooled, mixed, sums, total, loss] + g + hv
            }
            let fromBlocked = run(blocked), fromPlain = run(plain)
            if channels >= 16 { XCTAssertTrue(blocked.isChannelBlocked, "channels \(channels): a channel-blocked convolution output") }
            if blocked.isChannelBlocked {  // see testBatchNormAndElementwiseOnConvolutionOutputsMatchPlain
                XCTAssertFalse(fromBlocked[0].hasPlainStorage, "max pooling ran in the blocked layout, channels \(channels)")
                XCTAssertFalse(fromBlocked[1].hasPlainStorage, "broadcast arithmetic ran in the blocked layout, channels \(channels)")
                XCTAssertFalse(fromBlocked[5].hasPlainStorage, "the input gradient was formed in the blocked layout, channels \(channels)")
            }
            for (i, (a, e)) in zip(fromBlocked, fromPlain).enumerated() {
                assertClose(a, e, tolerance: 1e-5, absolute: 1e-4, "channels \(channels), result \(i)")
            }
        }
    }
}
