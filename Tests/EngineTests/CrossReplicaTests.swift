import Engine
import TestSupport
import XCTest

/// The data-parallel ops against one process with the whole batch: a group of threads
/// (`ThreadReplicaGroup`) each holding an equal slice must reproduce the whole batch's values and
/// gradients (first and second order) of synchronised batch norm, and the collectives' own.
final class CrossReplicaTests: XCTestCase {
    static func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var g = RandomGenerator(seed: seed)
        return Tensor.randomUniform(shape, low: -1, high: 1, generator: &g)
    }

    /// A loss of batch norm's output that mixes every sample: mean of (bn(x)·w)² over the batch.
    static func loss(_ x: Tensor, _ gamma: Tensor, _ beta: Tensor, _ w: Tensor, relu: Bool) -> (Tensor, Tensor, Tensor) {
        let (y, mean, variance) = x.batchNormTraining(weight: gamma, bias: beta, fusedReLU: relu)
        return (((y * w).square()).mean(), mean, variance)
    }

    func testSynchronisedBatchNormEqualsTheWholeBatch() {
        // Plain input, and a convolution's output (held in oneDNN's channel-blocked layout).
        for (relu, c) in [(false, 3), (true, 3), (false, 16), (true, 16)] {
            let input = Self.random([4, 16, 6, 6], seed: 5)
            let x = c == 3 ? Self.random([4, 3, 5, 5], seed: 1) : input.conv2d(Self.random([16, 16, 3, 3], seed: 6), bias: nil, stride: (1, 1), padding: (1, 1))
            let w = Self.random(x.shape, seed: 2)
            let gamma = Self.random([c], seed: 3).requiringGrad(), beta = Self.random([c], seed: 4).requiringGrad()
            let xr = x.requiringGrad()
            let (whole, mean, variance) = Self.loss(xr, gamma, beta, w, relu: relu)
            let expected = gradients(of: whole, wrt: [xr, gamma, beta])
            let parts = ThreadReplicaGroup.run(size: 2) { group in
                Replicas.with(group) { () -> [Tensor] in
                    let rows = group.rank * 2 ..< group.rank * 2 + 2
                    let xs = x.slice(axis: 0, rows).requiringGrad()
                    let (l, m, v) = CrossReplicaTests.loss(xs, gamma, beta, w.slice(axis: 0, rows), relu: relu)
                    let g = Replicas.averaged(gradients(of: l, wrt: [gamma, beta]))
                    // The whole loss is the mean of the slices' losses: this slice's x gradient is half its own.
                    let gx = gradients(of: l, wrt: [xs])[0].scaled(by: 0.5)
                    return [l, m, v, gx] + g
                }
            }
            let meanLoss = (parts[0][0].item + parts[1][0].item) / 2
            XCTAssertEqual(meanLoss, whole.item, accuracy: 1e-6 * abs(whole.item), "loss, relu \(relu)")
            for p in parts {
                assertClose(p[1], mean, tolerance: 1e-6, "mean")
                assertClose(p[2], variance, tolerance: 1e-6, "variance")
                assertClose(p[4], expected[1], tolerance: 1e-5, "∂γ, relu \(relu)")
                assertClose(p[5], expected[2], tolerance: 1e-5, "∂β, relu \(relu)")
            }
            assertClose(Tensor.concat([parts[0][3], parts[1][3]], axis: 0), expected[0], tolerance: 1e-5, "∂x, relu \(relu)")
        }
    }

    /// Second order: H = ⟨v, ∂x⟩ + ⟨p, ∂γ⟩ + ⟨q, ∂β⟩ of the whole batch's loss, differentiated again
    /// with respect to x, γ and β, by the fused double backward (outer pass not recorded) and by
    /// the composite formula (recorded), on two threads each with half the batch. Each replica's H
    /// is its share: its own slice's ⟨v, ∂x⟩ and half of the replicated terms, so that the group's
    /// total is the whole batch's H.
    func testSynchronisedBatchNormSecondOrderEqualsTheWholeBatch() {
        for (relu, c, recorded) in [(false, 3, false), (true, 16, false), (true, 16, true), (false, 3, true)] {
            let input = Self.random([4, 16, 6, 6], seed: 5)
            let x = c == 3 ? Self.random([4, 3, 5, 5], seed: 1) : input.conv2d(Self.random([16, 16, 3, 3], seed: 6), bias: nil, stride: (1, 1), padding: (1, 1))
            let w = Self.random(x.shape, seed: 2), v = Self.random(x.shape, seed: 7)
            let p = Self.random([c], seed: 8), q = Self.random([c], seed: 9)
            let gamma = Self.random([c], seed: 3).requiringGrad(), beta = Self.random([c], seed: 4).requiringGrad()
            @Sendable func outer(_ xs: Tensor, _ share: Float, _ rows: Range<Int>, average: ([Tensor]) -> [Tensor]) -> [Tensor] {
                let l = CrossReplicaTests.loss(xs, gamma, beta, w.slice(axis: 0, rows), relu: relu).0
                let g = gradients(of: l, wrt: [xs, gamma, beta], createGraph: true)
                let params = average([g[1], g[2]])
                let h = (g[0] * v.slice(axis: 0, rows)).sum().scaled(by: share)
                    + ((params[0] * p).sum() + (params[1] * q).sum()).scaled(by: share)
                return gradients(of: h, wrt: [xs, gamma, beta], createGraph: recorded)
            }
            let xr = x.requiringGrad()
            let expected = outer(xr, 1, 0 ..< 4) { $0 }
            let parts = ThreadReplicaGroup.run(size: 2) { group in
                Replicas.with(group) { () -> [Tensor] in
                    let rows = group.rank * 2 ..< group.rank * 2 + 2
                    // This slice's loss is twice its share of the whole batch's mean: ∂x and the average of ∂γ, ∂β scaled to match.
                    let g = outer(x.slice(axis: 0, rows).requiringGrad(), 0.5, rows) { Replicas.averaged($0) }
                    return [g[0]] + Replicas.averaged([g[1], g[2]]).map { $0.scaled(by: 2) }
                }
            }
            let label = "relu \(relu), c \(c), recorded \(recorded)"
            assertClose(Tensor.concat([parts[0][0], parts[1][0]], axis: 0), expected[0], tolerance: 1e-4, "∂x of H, \(label)")
            for part in parts {
                assertClose(part[1], expected[1], tolerance: 1e-4, "∂γ of H, \(label)")
                assertClose(part[2], expected[2], tolerance: 1e-4, "∂β of H, \(label)")
            }
        }
    }

    /// The gradient average in buckets started during the backward pass gives the same bits as one
    /// sum after it, for buckets of one value, of a few, and of everything; with a parameter the
    /// loss does not use (zeros) and one passed twice; and a pass whose batch norm runs collectives
    /// of its own between the buckets' (the group defers each bucket's sum to its wait).
    func testBucketedGradientAverageEqualsOneSumAfterThePass() {
        let x = Self.random([4, 3, 6, 6], seed: 11)
        let convW = Self.random([8, 3, 3, 3], seed: 12).requiringGrad()
        let gamma = Self.random([8], seed: 13).requiringGrad(), beta = Self.random([8], seed: 14).requiringGrad()
        let fc = Self.random([8 * 36, 5], seed: 15).requiringGrad()
        let unused = Self.random([3], seed: 16).requiringGrad()
        let parameters = [convW, gamma, beta, fc, unused, gamma]
        @Sendable func loss(_ rows: Range<Int>) -> Tensor {
            let h = x.slice(axis: 0, rows).conv2d(convW, padding: (1, 1)).batchNormTraining(weight: gamma, bias: beta, fusedReLU: true).0
            return h.flattened(from: 1).matmul(fc).square().mean()
        }
        let saved = Replicas.bucketCapacity
        defer { Replicas.bucketCapacity = saved }
        for capacity in [1, 7, 300, 1 << 20] {
            Replicas.bucketCapacity = capacity
            let parts = ThreadReplicaGroup.run(size: 2) { group in
                Replicas.with(group) { () -> ([[Float]], [[Float]]) in
                    let rows = group.rank * 2 ..< group.rank * 2 + 2
                    let oneSum = Replicas.averaged(gradients(of: loss(rows), wrt: parameters))
                    let bucketed = Replicas.averagedGradients(of: loss(rows), wrt: parameters, retainGraph: false)
                    return (oneSum.map(\.scalars), bucketed.map(\.scalars))
                }
            }
            for (rank, (oneSum, bucketed)) in parts.enumerated() {
                XCTAssertEqual(bucketed, oneSum, "capacity \(capacity), rank \(rank)")
                XCTAssertEqual(bucketed[4], [0, 0, 0], "the unused parameter")
                XCTAssertEqual(bucketed[5], bucketed[1], "the parameter passed twice")
                XCTAssertNotEqual(bucketed[0], Array(repeating: 0, count: bucketed[0].count))
            }
            XCTAssertEqual(parts[0].1, parts[1].1, "capacity \(capacity): ranks differ")
        }
    }
}
