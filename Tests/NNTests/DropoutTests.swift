import Engine
import NN
import XCTest

/// `Dropout`: the identity in evaluation; in training, PyTorch's inverted dropout with masks from
/// the thread's seeded stream.
final class DropoutTests: XCTestCase {
    func testEvaluationIsTheIdentityAndTrainingDropsAFractionP() {
        let d = Dropout(p: 0.3)
        let x = Tensor.full([200, 500], 2)
        d.eval()
        XCTAssertTrue(d(x) === x)
        d.train()
        let y = DropoutNoise.with(seed: 1) { d(x) }.scalars
        let dropped = Double(y.filter { $0 == 0 }.count) / Double(y.count)
        XCTAssertEqual(dropped, 0.3, accuracy: 0.005, "fraction zeroed")
        XCTAssertEqual(Set(y), [0, 2 / 0.7], "kept values scaled by 1/(1 − p)")
        XCTAssertEqual(Dropout(p: 0)(x).scalars, x.scalars)
        XCTAssertEqual(Set(Dropout(p: 1)(x).scalars), [0])
    }

    func testMasksFollowTheStreamsSeed() {
        let d = Dropout(p: 0.5)
        let x = Tensor.ones([4096])
        let a = DropoutNoise.with(seed: 7) { d(x) }.scalars, b = DropoutNoise.with(seed: 7) { d(x) }.scalars
        XCTAssertEqual(a, b, "same seed, same mask")
        XCTAssertNotEqual(a, DropoutNoise.with(seed: 8) { d(x) }.scalars)
        // Two draws inside one stream differ; the stream ends with `with`.
        let (c1, c2) = DropoutNoise.with(seed: 7) { (d(x).scalars, d(x).scalars) }
        XCTAssertEqual(c1, a)
        XCTAssertNotEqual(c1, c2)
        XCTAssertNotEqual(d(x).scalars, a, "outside a stream, the module's own generator")
    }

    func testTheGradientIsTheMask() {
        let d = Dropout(p: 0.25)
        let x = Tensor.randomNormal([64, 8], generator: &Initialization.generator).requiringGrad()
        let y = DropoutNoise.with(seed: 3) { d(x) }
        let mask = DropoutNoise.with(seed: 3) { d(Tensor.ones([64, 8])) }.scalars
        let g = gradients(of: y.sum(), wrt: [x])[0]
        XCTAssertEqual(g.scalars, mask)
        XCTAssertEqual(y.scalars, zip(x.scalars, mask).map { $0 * $1 })
    }
}
