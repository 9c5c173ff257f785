import Distillation
import Engine
import NN
import XCTest

final class MetaWeightNetworkTests: XCTestCase {
    func testShapesSoftmaxAndStopGradient() {
        Initialization.seed(2)
        let net = MetaWeightNetwork(teachers: 3, width: 10)
        XCTAssertEqual(net.stateDict.map { $0.1.shape }, [[20, 40], [20], [3, 20], [3]], "C(K+1) → C(K+1)/2 → K")
        var g = RandomGenerator(seed: 4)
        let teachers = (0..<3).map { _ in Tensor.randomNormal([5, 10], generator: &g) }
        let student = Tensor.randomNormal([5, 10], generator: &g).requiringGrad()
        let w = net.weights(teacherInputs: teachers, studentInput: student)
        XCTAssertEqual(w.shape, [5, 3])
        for row in 0..<5 { XCTAssertEqual(w.scalars[(row * 3)..<(row * 3 + 3)].reduce(0, +), 1, accuracy: 1e-6) }
        let loss = (w * Tensor([1, 2, 3], shape: [3])).sum()
        let grads = gradients(of: loss, wrt: net.parameters + [student])
        XCTAssertGreaterThan(grads[0].abs().sum().item, 0, "the meta network learns")
        XCTAssertEqual(grads.last!.abs().sum().item, 0, "no gradient reaches the student through its weights")
    }

    func testBatchSimilarityRowsAreUnitLengthAndRawIsTheGram() {
        var g = RandomGenerator(seed: 5)
        let f = Tensor.randomNormal([4, 3, 2, 2], generator: &g)
        let raw = f.batchSimilarity(normalised: false), unit = f.batchSimilarity()
        XCTAssertEqual(raw.shape, [4, 4])
        let flat = f.scalars
        var expected: Float = 0
        for k in 0..<12 { expected += flat[k] * flat[12 + k] }
        XCTAssertEqual(raw.scalars[1], expected, accuracy: 1e-4)
        for row in 0..<4 {
            XCTAssertEqual(unit.scalars[(row * 4)..<(row * 4 + 4)].map { $0 * $0 }.reduce(0, +), 1, accuracy: 1e-5)
        }
    }
}
