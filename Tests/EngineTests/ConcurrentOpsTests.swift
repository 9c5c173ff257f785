import Engine
import Foundation
import XCTest

/// Ops may run on several threads at once: oneDNN streams, primitive and reorder caches and the
/// FLOP counter are per thread, so concurrent forward and backward passes give exactly the values a
/// single thread gives.
final class ConcurrentOpsTests: XCTestCase {
    /// A small conv + batch norm + ReLU + pool + linear network's loss and gradients, flattened.
    static func pass(seed: UInt64) -> [Float] {
        var g = RandomGenerator(seed: seed)
        let x = Tensor.randomNormal([4, 8, 12, 12], generator: &g)
        let w1 = Tensor.randomNormal([16, 8, 3, 3], std: 0.2, generator: &g).requiringGrad()
        let w2 = Tensor.randomNormal([16, 16, 3, 3], std: 0.2, generator: &g).requiringGrad()
        let gamma = Tensor.ones([16]).requiringGrad(), beta = Tensor.zeros([16]).requiringGrad()
        let fc = Tensor.randomNormal([10, 16], std: 0.3, generator: &g).requiringGrad()
        let h = x.conv2d(w1, padding: (1, 1)).batchNormTraining(weight: gamma, bias: beta, fusedReLU: true).output
        let pooled = h.conv2d(w2, stride: (2, 2), padding: (1, 1)).maxPool2d(kernel: (2, 2)).adaptiveAvgPool2d((1, 1))
        let loss = crossEntropy(pooled.flattened().linear(fc), labels: [1, 3, 5, 7])
        let grads = gradients(of: loss, wrt: [w1, w2, gamma, beta, fc])
        return loss.scalars + grads.flatMap(\.scalars)
    }

    func testConcurrentPassesMatchOneThreadBitForBit() {
        let seeds: [UInt64] = [1, 2, 3, 4]
        let alone = seeds.map { Self.pass(seed: $0) }
        final class Results: @unchecked Sendable { var values = [[Float]](repeating: [], count: 4); var flops = [Double](repeating: 0, count: 4) }
        let results = Results()
        let group = DispatchGroup()
        for (i, seed) in seeds.enumerated() {
            group.enter()
            Thread {
                for _ in 0..<3 {
                    let (values, flops) = FlopCounter.count { Self.pass(seed: seed) }
                    results.values[i] = values
                    results.flops[i] = flops
                }
                group.leave()
            }.start()
        }
        group.wait()
        for i in seeds.indices {
            let mismatch = zip(results.values[i], alone[i]).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }?.offset
            XCTAssertTrue(results.values[i].count == alone[i].count && mismatch == nil, "thread \(i): first differing value at \(mismatch ?? -1)")
        }
        let (_, oneThreadFlops) = FlopCounter.count { Self.pass(seed: 1) }
        XCTAssertEqual(Set(results.flops), [oneThreadFlops], "each thread counts its own ops")
    }
}
