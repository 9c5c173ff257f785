import Engine
import Foundation
import NN
import TestSupport
import XCTest

/// Read once; never mutated.
nonisolated(unsafe) private let fixtures: [String: Any] = {
    let url = Bundle.module.url(forResource: "nn_fixtures", withExtension: "json", subdirectory: "Fixtures")!
    return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}()

private func tensor(_ any: Any?) -> Tensor {
    let d = any as! [String: Any]
    return Tensor((d["data"] as! [NSNumber]).map(\.floatValue), shape: (d["shape"] as! [NSNumber]).map(\.intValue))
}

/// NN fixtures compare against the expected norm floored at 1e-3 (small gradients).
private func assertClose(_ a: Tensor, _ e: Tensor, _ tol: Float, _ msg: String, file: StaticString = #filePath, line: UInt = #line) {
    TestSupport.assertClose(a, e, tolerance: tol, absolute: 0, normFloor: 1e-3, msg, file: file, line: line)
}

/// Mirrors the fixture script's `Block`.
final class Block: Module, UnaryLayer {
    let conv1: Conv2d, bn1: BatchNorm2d, shortcut: Sequential
    init(_ cin: Int, _ cout: Int) {
        conv1 = Conv2d(cin, cout, kernelSize: 3, padding: 1, bias: false)
        bn1 = BatchNorm2d(cout)
        shortcut = Sequential(Conv2d(cin, cout, kernelSize: 1, bias: false), BatchNorm2d(cout))
        super.init()
    }
    func callAsFunction(_ x: Tensor) -> Tensor { (bn1(conv1(x)) + shortcut(x)).relu() }
}

/// Mirrors the fixture script's `TinyNet`.
final class TinyNet: Module, UnaryLayer {
    let layer1: [Block]
    let fc: Linear
    override init() {
        layer1 = [Block(3, 4), Block(4, 4)]
        fc = Linear(4, 10)
        super.init()
    }
    func callAsFunction(_ x: Tensor) -> Tensor {
        fc(layer1.reduce(x) { $1($0) }.adaptiveAvgPool2d((1, 1)).flattened())
    }
}

final class ModuleTests: XCTestCase {
    func testStateDictNamesAndOrderMatchPyTorch() {
        let expected = (fixtures["tiny_net_keys"] as! [[Any]]).map { ($0[0] as! String, ($0[1] as! [NSNumber]).map(\.intValue)) }
        let ours = TinyNet().stateDict.map { ($0.0, $0.1.shape) }
        XCTAssertEqual(ours.map(\.0), expected.map(\.0))
        XCTAssertEqual(ours.map(\.1), expected.map(\.1))
    }

    func testParametersBuffersAndModes() {
        let net = TinyNet()
        XCTAssertEqual(net.parameterCount, 3 * 4 * 9 + 8 + 3 * 4 + 8 + 4 * 4 * 9 + 8 + 16 + 8 + 40 + 10)
        XCTAssertTrue(net.namedBuffers.allSatisfy { $0.0.hasSuffix("running_mean") || $0.0.hasSuffix("running_var") || $0.0.hasSuffix("num_batches_tracked") })
        XCTAssertTrue(net.parameters.allSatisfy(\.requiresGrad))
        net.eval()
        XCTAssertFalse(net.layer1[1].shortcut.isTraining)
        net.train()
        XCTAssertTrue(net.layer1[1].bn1.isTraining)
    }

    func testValidateNamesTheFirstMismatch() {
        let net = TinyNet()
        var state = net.snapshot()
        XCTAssertNoThrow(try net.validate(state))
        state["fc.weight"] = Tensor.zeros([3, 4])
        XCTAssertThrowsError(try net.validate(state)) { error in
            XCTAssertEqual(error as? StateDictError, .shapeMismatch("fc.weight", expected: [10, 4], found: [3, 4]))
        }
        state["fc.weight"] = nil
        XCTAssertThrowsError(try net.validate(state)) { XCTAssertEqual($0 as? StateDictError, .missingKey("fc.weight", expectedShape: [10, 4])) }
    }

    func testBatchNormRunningStatisticsMatchPyTorch() {
        let c = fixtures["batch_norm_running"] as! [String: Any]
        let bn = BatchNorm2d(3)
        for x in c["inputs"] as! [Any] { _ = bn(tensor(x)) }
        assertClose(bn.runningMean, tensor(c["mean"]), 1e-5, "running mean")
        assertClose(bn.runningVar, tensor(c["var"]), 1e-5, "running var")
        XCTAssertEqual(bn.numBatchesTracked.item, 2)
    }

    func testTrainingStepMatchesPyTorch() {
        let c = fixtures["tiny_net_step"] as! [String: Any]
        let net = TinyNet()
        net.load((c["before"] as! [String: Any]).mapValues(tensor))
        var sgd = OptimizerDriver(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true))
        let loss = crossEntropy(net(tensor(c["x"])), labels: c["labels"] as! [Int])
        XCTAssertEqual(loss.item, (c["loss"] as! NSNumber).floatValue, accuracy: 1e-5)
        sgd.minimize(loss, of: net)
        let after = (c["after"] as! [String: Any]).mapValues(tensor)
        for (name, t) in net.stateDict { assertClose(t, after[name]!, 1e-5, name) }
    }

    func testOrdinaryStepsKeepNoHistoryAndRecordedStepsDo() {
        let net = TinyNet()
        let x = Tensor.randomNormal([4, 3, 6, 6], generator: &Initialization.generator)
        var sgd = OptimizerDriver(SGD(learningRate: 0.1, momentum: 0.9, nesterov: true))
        sgd.minimize(crossEntropy(net(x), labels: [0, 1, 2, 3]), of: net)
        XCTAssertTrue(net.parameters.allSatisfy { $0.gradFunction == nil && $0.requiresGrad },
                      "after an ordinary step the parameters are fresh leaves (the old step is not kept alive)")
        XCTAssertTrue(sgd.states.values.allSatisfy { $0.momentumBuffer?.gradFunction == nil })
        sgd.minimize(crossEntropy(net(x), labels: [0, 1, 2, 3]), of: net, createGraph: true)
        XCTAssertTrue(net.parameters.allSatisfy { $0.gradFunction != nil }, "a recorded step is differentiable")
    }

    func testSnapshotRestoresParametersBuffersAndOptimizerState() {
        let net = TinyNet()
        let x = Tensor.randomNormal([4, 3, 6, 6], generator: &Initialization.generator)
        var sgd = OptimizerDriver(SGD(learningRate: 0.1, momentum: 0.9, nesterov: true))
        sgd.minimize(crossEntropy(net(x), labels: [0, 1, 2, 3]), of: net)
        let snapshot = net.snapshot(), optimizerSnapshot = sgd
        let before = net.stateDict.map { $0.1.scalars }
        sgd.minimize(crossEntropy(net(x), labels: [0, 1, 2, 3]), of: net)
        XCTAssertNotEqual(net.stateDict.map { $0.1.scalars }, before)
        net.restore(snapshot)
        sgd = optimizerSnapshot
        XCTAssertEqual(net.stateDict.map { $0.1.scalars }, before)
        XCTAssertEqual(sgd.states["fc.weight"]?.momentumBuffer?.scalars, optimizerSnapshot.states["fc.weight"]?.momentumBuffer?.scalars)
    }
}

final class OptimizerTests: XCTestCase {
    func trajectory<O: Optimizer>(_ optimizer: O, _ name: String, tolerance: Float = 1e-5) {
        let x = tensor(fixtures["x"]), labels = fixtures["labels"] as! [Int]
        var w = tensor(fixtures["weight"]).requiringGrad(), b = tensor(fixtures["bias"]).requiringGrad()
        var states: [O.State?] = [nil, nil]
        for (step, expected) in (fixtures[name] as! [[String: Any]]).enumerated() {
            let g = gradients(of: crossEntropy(x.linear(w, bias: b), labels: labels), wrt: [w, b])
            let (w2, sw) = optimizer.step(parameter: w, gradient: g[0], state: states[0])
            let (b2, sb) = optimizer.step(parameter: b, gradient: g[1], state: states[1])
            states = [sw, sb]
            w = w2.requiringGrad(); b = b2.requiringGrad()
            assertClose(w, tensor(expected["weight"]), tolerance, "\(name) weight after step \(step + 1)")
            assertClose(b, tensor(expected["bias"]), tolerance, "\(name) bias after step \(step + 1)")
        }
    }

    func testSGDNesterovMatchesPyTorchForFiveSteps() {
        trajectory(SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true), "sgd_nesterov")
    }

    func testSGDMomentumWithDampeningMatchesPyTorch() {
        trajectory(SGD(learningRate: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 1e-3), "sgd_plain_momentum")
    }

    func testAdamMatchesPyTorchForFiveSteps() {
        trajectory(Adam(learningRate: 1e-2, weightDecay: 1e-4), "adam")
    }

    func testMultiStepSchedule() {
        let s = MultiStepLR(baseRate: 0.05, milestones: [150, 180, 210])
        XCTAssertEqual(s.rate(epoch: 0), 0.05)
        XCTAssertEqual(s.rate(epoch: 149), 0.05)
        XCTAssertEqual(s.rate(epoch: 150), 0.005, accuracy: 1e-9)
        XCTAssertEqual(s.rate(epoch: 239), 0.00005, accuracy: 1e-10)
    }

    func testRecordedSGDStepIsDifferentiable() {
        // θ' = θ − lr·∇θ(φ·L(θ)); d(L(θ'))/dφ must equal −lr·⟨∇L(θ'), ∇L(θ)⟩.
        let x = tensor(fixtures["x"]), labels = fixtures["labels"] as! [Int]
        let w = tensor(fixtures["weight"]).requiringGrad()
        let phi = Tensor(scalar: 1.3).requiringGrad()
        let sgd = SGD(learningRate: 0.1)
        let g = gradients(of: crossEntropy(x.linear(w), labels: labels) * phi, wrt: [w], createGraph: true)[0]
        let (w2, _) = sgd.step(parameter: w, gradient: g, state: nil)
        let outer = crossEntropy(x.linear(w2), labels: labels)
        let dphi = gradients(of: outer, wrt: [phi])[0].item
        let w2leaf = w2.detached().requiringGrad()
        let gNew = gradients(of: crossEntropy(x.linear(w2leaf), labels: labels), wrt: [w2leaf])[0]
        let gOld = gradients(of: crossEntropy(x.linear(w), labels: labels), wrt: [w])[0]
        XCTAssertEqual(dphi, -0.1 * (gNew * gOld).sum().item, accuracy: 1e-6)
    }

    func testFoldedBatchNormInferenceMatchesConvolutionThenBatchNorm() {
        var rng = RandomGenerator(seed: 11)
        defer { WinogradPolicy.minimumChannels = 128; WinogradPolicy.isEnabled = true }
        // Direct (8 input channels are below the Winograd threshold), then Winograd where it applies
        // (one group), then with Winograd turned off.
        for (minimum, winograd) in [(128, true), (8, true), (8, false)] {
        WinogradPolicy.minimumChannels = minimum; WinogradPolicy.isEnabled = winograd
        for (bias, groups, relu) in [(false, 1, true), (true, 1, false), (false, 4, true), (true, 2, true)] {
            let conv = Conv2d(8, 16, kernelSize: 3, padding: 1, groups: groups, bias: bias)
            let bn = BatchNorm2d(16)
            func randomStatistics() {
                bn.update(parameters: ["weight": Tensor.randomUniform([16], low: 0.5, high: 1.5, generator: &rng),
                                       "bias": Tensor.randomNormal([16], generator: &rng)])
                bn.update(buffers: ["running_mean": Tensor.randomNormal([16], generator: &rng),
                                    "running_var": Tensor.randomUniform([16], low: 0.2, high: 2, generator: &rng)])
            }
            randomStatistics()
            bn.eval()
            let x = Tensor.randomNormal([2, 8, 6, 6], generator: &rng)
            let label = "bias \(bias), groups \(groups), relu \(relu), Winograd \(winograd) from \(minimum) channels"
            func check(_ what: String) {
                let reference = bn(conv(x), fusedReLU: relu)          // recording on: not folded
                let folded = withoutGrad { conv(x, normalizedBy: bn, relu: relu) }
                assertClose(folded, reference, 1e-5, "\(label), \(what)")
            }
            check("first use")
            let cachedOutput = withoutGrad { conv(x, normalizedBy: bn, relu: relu) }.scalars
            conv.releaseInferenceCaches()
            XCTAssertEqual(withoutGrad { conv(x, normalizedBy: bn, relu: relu) }.scalars, cachedOutput, "\(label): rebuilt after release")
            // New statistics and weights replace the cached folding.
            randomStatistics()
            conv.update(parameters: ["weight": Tensor.randomNormal(conv.weight.shape, std: 0.3, generator: &rng)])
            check("after an update")
            // Training mode never folds: batch statistics, running statistics updated.
            bn.train()
            let before = bn.runningMean.scalars
            _ = withoutGrad { conv(x, normalizedBy: bn, relu: relu) }
            XCTAssertNotEqual(bn.runningMean.scalars, before, "\(label): training mode updates the running mean")
        }
        }
    }
}
