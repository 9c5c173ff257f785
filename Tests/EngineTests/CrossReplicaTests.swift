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
}
