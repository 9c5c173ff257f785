import Engine
import TestSupport
import XCTest

/// What a recorded graph keeps alive, and the order a backward pass runs and sums in.
final class GraphMemoryTests: XCTestCase {
    /// Intermediate tensors that no derivative reads are not held by the graph: a sum, a reshape
    /// and a product's operand whose partner needs no gradient are freed as soon as the forward
    /// code drops them, and the gradient is still right.
    func testTheGraphKeepsNoValueItsRulesDoNotRead() {
        let x = randomTensor([2, 3], seed: 1, requiresGrad: true)
        let c = randomTensor([3, 2], seed: 2)
        weak var shifted: Tensor?, reshaped: Tensor?, product: Tensor?
        let loss: Tensor = {
            let t = x + 1
            let r = t.reshaped([3, 2])
            let p = r * c  // c needs no gradient: only c is kept, for r's
            (shifted, reshaped, product) = (t, r, p)
            return p.sum()
        }()
        XCTAssertNil(shifted, "x + 1 is not read by any derivative")
        XCTAssertNil(reshaped, "the reshape's result is only an operand of a product whose other side needs no gradient")
        XCTAssertNil(product, "a sum's derivative reads nothing")
        let g = gradients(of: loss, wrt: [x])[0]
        XCTAssertEqual(g.scalars, c.reshaped([2, 3]).scalars)
    }

    /// A product of two tensors that need gradients keeps both (each one's gradient reads the
    /// other); a rule that reads its output (exp) keeps the output's values, re-attached to the
    /// graph, so derivatives of every order are still exact after the forward result is dropped.
    func testValuesADerivativeReadsAreKeptToEveryOrder() {
        let x = randomTensor([4], seed: 3, requiresGrad: true)
        weak var square: Tensor?, exponential: Tensor?
        let loss: Tensor = {
            let e = x.exp()
            let s = x * x
            (square, exponential) = (s, e)
            return (e * s).sum()
        }()
        XCTAssertNotNil(square, "both operands of e·s need gradients: each is kept for the other's")
        XCTAssertNotNil(exponential)
        // d/dx e^x·x² = e^x·(x² + 2x); d²/dx² = e^x·(x² + 4x + 2)
        let g = gradients(of: loss, wrt: [x], createGraph: true)[0]
        let expected = withoutGrad { x.exp() * (x * x + x * 2) }
        assertClose(g, expected, tolerance: 1e-6)
        let h = gradients(of: g.sum(), wrt: [x])[0]
        assertClose(h, withoutGrad { x.exp() * (x * x + x * 4 + 2) }, tolerance: 1e-5)

        weak var output: Tensor?
        let second: Tensor = {
            let e = x.exp()
            output = e
            return gradients(of: e.sum(), wrt: [x], createGraph: true)[0].sum()
        }()
        XCTAssertNil(output, "the output object goes; its values stay with its node")
        assertClose(gradients(of: second, wrt: [x])[0], withoutGrad { x.exp() }, tolerance: 1e-6)
    }

    /// The pass runs nodes newest first, but adds the contributions to one gradient in the order of
    /// a depth-first walk from the output (the order it has always used), so that sums of three or
    /// more contributions associate as before. Here x gets three contributions whose float sum
    /// depends on the association: (w2 + w1) + w3 = 1, (w3 + w2) + w1 = 0.
    func testContributionsAreSummedInDepthFirstOrder() {
        let x = Tensor([1], shape: [1]).requiringGrad()
        let (w1, w2, w3): (Float, Float, Float) = (1e8, -1e8, 1)
        let u1 = x * w1, u2 = x * w2, u3 = x * w3
        // Depth-first from the output: (u3 + u1) first, then u2; reversed post-order runs u2's
        // product, then u1's, then u3's; newest first would run u3, u2, u1.
        let loss = (u3.sum() + u1.sum()) + u2.sum()
        let g = gradients(of: loss, wrt: [x])[0]
        XCTAssertEqual(g.scalars, [(w2 + w1) + w3])
        XCTAssertNotEqual((w3 + w2) + w1, (w2 + w1) + w3, "the test must tell the orders apart")
    }

    /// A second-order pass that releases each node of the recorded graph as it runs (retainGraph:
    /// false, as the hypergradient's) reads every saved value before its node goes.
    func testASecondOrderPassThatReleasesTheGraphIsExact() {
        let x = randomTensor([3], seed: 5, requiresGrad: true)
        let g = gradients(of: (x.exp() * x).sum(), wrt: [x], createGraph: true)[0]
        let h = gradients(of: g.sum(), wrt: [x], retainGraph: false)[0]
        assertClose(h, withoutGrad { x.exp() * (x + 2) }, tolerance: 1e-5)
    }
}
