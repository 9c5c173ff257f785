import Engine
import TestSupport
import XCTest

/// The backward profile counts each rule a pass runs, recorded passes under `+G`, and a composite
/// derivative's nested rules under their own names.
final class BackwardProfileTests: XCTestCase {
    func testProfileCountsRulesOfPlainRecordedAndNestedPasses() {
        let wasEnabled = BackwardProfile.isEnabled
        BackwardProfile.isEnabled = true
        BackwardProfile.shared.reset()
        defer { BackwardProfile.isEnabled = wasEnabled; BackwardProfile.shared.reset() }

        let x = randomTensor([4, 3, 3, 3], seed: 1).requiringGrad()
        let gamma = (randomTensor([3], seed: 2).abs() + 0.5).requiringGrad(), beta = randomTensor([3], seed: 3).requiringGrad()
        let loss = x.batchNormTraining(weight: gamma, bias: beta).output.square().mean()
        let g = gradients(of: loss, wrt: [x, gamma, beta], createGraph: true)
        // Recorded for a second pass through the composite derivative, which runs nested rules.
        _ = gradients(of: (g[0] * g[0]).sum() + g[1].sum(), wrt: [x, gamma, beta], createGraph: true)

        let rules = Dictionary(uniqueKeysWithValues: BackwardProfile.shared.snapshot.map { ($0.rule, $0.entry) })
        XCTAssertEqual(rules["batchNorm+G"]?.calls, 2, "both passes through batch norm (the gradients depend on the forward): \(rules.keys.sorted())")
        XCTAssertEqual(rules["batchNormBackward+G"]?.calls, 1, "the second pass through the fused backward's composite")
        XCTAssertEqual(rules["batchNormWeightGradient+G"]?.calls, 1)
        XCTAssertNotNil(rules["rsqrt+G"], "the composite's own rules are counted under their names")
        XCTAssertTrue(rules.values.allSatisfy { $0.seconds >= 0 && $0.calls > 0 })
        XCTAssertTrue(BackwardProfile.shared.report().contains("batchNormBackward+G"))
    }
}
