import Engine
import Foundation
import Models
import NN
import XCTest

/// Walks `reference/state_dicts.json` and `reference/forward_fixtures.json` (copied from the
/// project's shared reference into Fixtures/) for every architecture the zoo builds.
final class ReferenceZooTests: XCTestCase {
    static func load(_ name: String) -> [String: Any] {
        let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }
    nonisolated(unsafe) static let stateDicts = load("state_dicts")
    nonisolated(unsafe) static let forward = load("forward_fixtures")["models"] as! [String: Any]
    /// The rest of the reference's model dictionary: state dict and forward fixture in one entry.
    nonisolated(unsafe) static let dictionary = load("zoo_extra")["models"] as! [String: Any]

    /// Every architecture with its state-dict reference and its forward fixture.
    static var references: [(name: String, stateDict: [String: Any], forward: [String: Any])] {
        ModelZoo.names.map { ($0, stateDicts[$0] as! [String: Any], forward[$0] as! [String: Any]) }
            + ModelZoo.dictionaryNames.map { ($0, dictionary[$0] as! [String: Any], dictionary[$0] as! [String: Any]) }
    }

    func testTheZooIsTheReferenceDictionary() {
        XCTAssertEqual(Set(Self.dictionary.keys), Set(ModelZoo.dictionaryNames))
        XCTAssertEqual(Set(Self.stateDicts.keys), Set(ModelZoo.names))
    }

    /// The fixtures' closed-form fill of state-dict entry `j`.
    static func fill(name: String, shape: [Int], index j: Int) -> Tensor {
        Tensor.make(shape) { p, n in
            let fanIn = shape.count >= 2 ? shape[1...].reduce(1, *) : 1
            for k in 0..<n {
                let a = 0.37 * Double(k) + 1.3 * Double(j)
                let v: Double
                if name.hasSuffix("num_batches_tracked") { v = 0 }
                else if name.hasSuffix("running_mean") { v = 0.05 * sin(a) }
                else if name.hasSuffix("running_var") { v = 1 + 0.25 * (1 + sin(a)) }
                else if name.hasSuffix("bias") { v = 0.05 * cos(a) }
                else if shape.count >= 2 { v = 0.5 * sin(a) * (3 / Double(fanIn)).squareRoot() }
                else { v = 1 + 0.1 * sin(a) }
                p[k] = Float(v)
            }
        }
    }

    func testStateDictsMatchTheReference() throws {
        for (name, ref, _) in Self.references {
            let model = try ModelZoo.make(name, classes: ref["num_classes"] as! Int)
            let expected = (ref["state_dict"] as! [[Any]]).map { ($0[0] as! String, ($0[1] as! [NSNumber]).map(\.intValue)) }
            let ours = model.stateDict.map { ($0.0, $0.1.shape) }
            XCTAssertEqual(ours.map(\.0), expected.map(\.0), name)
            XCTAssertEqual(ours.map(\.1), expected.map(\.1), name)
            let expectedParameters = expected.filter { !$0.0.contains("running_") && !$0.0.hasSuffix("num_batches_tracked") }
                .reduce(0) { $0 + $1.1.reduce(1, *) }
            XCTAssertEqual(model.parameterCount, expectedParameters, name)
            if let count = ref["parameters"] as? Int { XCTAssertEqual(model.parameterCount, count, name) }
        }
    }

    func testForwardFixturesAreReproduced() throws {
        for (name, _, fixture) in Self.references {
            let model = try ModelZoo.make(name, classes: fixture["num_classes"] as! Int)
            let state = Dictionary(uniqueKeysWithValues: model.stateDict.enumerated().map { j, entry in
                (entry.0, Self.fill(name: entry.0, shape: entry.1.shape, index: j))
            })
            model.load(state)
            model.eval()
            let inputShape = (fixture["input"] as! [NSNumber]).map(\.intValue)
            let x = Tensor.make(inputShape) { p, n in for i in 0..<n { p[i] = Float(sin(0.013 * Double(i))) } }
            let (features, logits) = withoutGrad { model.features(x) }
            let expectedLogits = (fixture["logits"] as! [[NSNumber]]).flatMap { $0.map(\.floatValue) }
            XCTAssertLessThanOrEqual(relativeError(logits.scalars, expectedLogits), 1e-3, "\(name) logits")
            let headLogits = withoutGrad { model.classify(penultimate: features[features.count - 2]) }
            XCTAssertLessThanOrEqual(relativeError(headLogits.scalars, logits.scalars), 1e-6, "\(name): its head on its penultimate map gives its logits")
            let expectedFeatures = fixture["features"] as! [[String: Any]]
            XCTAssertEqual(features.count, expectedFeatures.count, "\(name) feature count")
            for (i, (f, e)) in zip(features, expectedFeatures).enumerated() {
                XCTAssertEqual(f.shape, (e["shape"] as! [NSNumber]).map(\.intValue), "\(name) feature \(i) shape")
                let l2 = (e["l2"] as! NSNumber).doubleValue
                let ours = f.scalars.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
                XCTAssertEqual(ours, l2, accuracy: 1e-3 * l2, "\(name) feature \(i) L2")
                let sum = f.scalars.map(Double.init).reduce(0, +)
                XCTAssertEqual(sum, (e["sum"] as! NSNumber).doubleValue, accuracy: 1e-3 * l2, "\(name) feature \(i) sum")
                for sample in e["samples"] as! [[NSNumber]] {
                    XCTAssertEqual(Double(f.scalars[sample[0].intValue]), sample[1].doubleValue, accuracy: 1e-3 * l2 / Double(f.count).squareRoot() * 10,
                                   "\(name) feature \(i) value at \(sample[0])")
                }
            }
        }
    }

    func relativeError(_ a: [Float], _ e: [Float]) -> Double {
        let d = zip(a, e).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
        return d / max(e.map { Double($0) * Double($0) }.reduce(0, +).squareRoot(), 1e-12)
    }

    func testUnknownArchitectureIsNamed() {
        XCTAssertThrowsError(try ModelZoo.make("resnet9", classes: 10)) { error in
            XCTAssertTrue("\(error)".contains("resnet9"))
        }
    }
}

final class ZooExtrasTests: XCTestCase {
    /// MFLOPs per image at the native input, as `reference/models.md` lists them.
    func testFlopCountsMatchTheReferenceTable() throws {
        for (name, size, mflops) in [("resnet8", 32, 25.0), ("vgg13", 32, 569.9), ("MobileNetV2", 32, 13.0), ("ShuffleV2", 32, 89.0)] {
            let model = try ModelZoo.make(name, classes: 100)
            model.eval()
            let (_, flops) = FlopCounter.count { withoutGrad { model(Tensor.zeros([1, 3, size, size])) } }
            XCTAssertEqual(flops / 1e6, mflops, accuracy: 0.05, name)
        }
    }

    /// The widened ImageNet ResNets really are wider (the reference's are silently unwidened).
    func testWidenedResNetsAreWide() throws {
        let plain = try ModelZoo.make("ResNet18", classes: 10), wide = try ModelZoo.make("ResNet18x2", classes: 10)
        XCTAssertEqual(plain.stateDict.map(\.0), wide.stateDict.map(\.0), "same names, so PyTorch-style checkpoints of a widened net load")
        for ((name, p), (_, w)) in zip(plain.namedParameters, wide.namedParameters) where p.rank == 4 {
            XCTAssertEqual(w.shape[0], 2 * p.shape[0], name)
            if name != "conv1.weight" { XCTAssertEqual(w.shape[1], 2 * p.shape[1], name) }
        }
        let wide34 = try ModelZoo.make("ResNet34x2", classes: 10)
        wide34.eval()
        let (features, logits) = withoutGrad { wide34.features(Tensor.zeros([1, 3, 64, 64])) }
        XCTAssertEqual(features.map(\.shape), [[1, 128, 16, 16], [1, 128, 16, 16], [1, 256, 8, 8], [1, 512, 4, 4], [1, 1024, 2, 2], [1, 1024]])
        XCTAssertEqual(logits.shape, [1, 10])
    }
}
