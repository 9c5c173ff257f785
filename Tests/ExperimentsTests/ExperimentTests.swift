import Checkpoints
import Distillation
import Engine
import Experiments
import Foundation
import Models
import NN
import TestSupport
import XCTest

/// `mmkd run` / `mmkd report` on a tiny CIFAR-10-format data set: a teacher trained in the
/// experiment, one from a checkpoint, three methods and two seeds.
final class ExperimentTests: TinyCIFARTestCase {
    override var dataSeed: UInt64 { 21 }

    override func setUpWithError() throws {
        try super.setUpWithError()
        Initialization.seed(7)
        try ModelCheckpoint.save(try ModelZoo.make("resnet14", classes: 10), metadata: ["arch": "resnet14"],
                                 to: URL(fileURLWithPath: folder + "/teacher.safetensors"))
    }

    func writeSpec(_ extra: String = "", methods: String = "[alone, aver, {name: mmkd, method: mmkd, buffer_size: 16, meta_freq: 2}]") throws -> String {
        let yaml = """
        name: tiny
        data: cifar10:\(folder!)
        seeds: [1, 2]
        budget: {epochs: 2, batch_size: 8, milestones: [1], loader_threads: 1}
        teachers:
          - {name: given, arch: resnet14, checkpoint: \(folder!)/teacher.safetensors}
          - {name: trained, arch: resnet8, train: {seed: 3, epochs: 1}}
        pairs:
          - {name: two-to-r8, student: resnet8, teachers: [given, trained]}
        methods: \(methods)
        \(extra)
        """
        let path = folder + "/experiment-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testInterruptedRunFinishesWithTheNumbersOfAnUninterruptedOne() throws {
        let spec = try ExperimentSpec.load(try writeSpec())
        XCTAssertEqual(spec.cells().count, 1 + 2 * 3, "one teacher to train, then 2 seeds × (alone, aver, mmkd)")

        let straight = try ExperimentRunner(spec: spec, output: folder + "/a")
        XCTAssertTrue(try straight.run(progress: nil))

        // Stopped after 4 epochs in all (the teacher's 1, seed 1's alone 2, one of aver's), then
        // twice more by new runners, as a killed and restarted `mmkd run` would be.
        XCTAssertFalse(try ExperimentRunner(spec: spec, output: folder + "/b").run(progress: nil, stopAfterEpochs: 4))
        XCTAssertFalse(try ExperimentRunner(spec: spec, output: folder + "/b").run(progress: nil, stopAfterEpochs: 3))
        var restarted: ExperimentRunner? = try ExperimentRunner(spec: spec, output: folder + "/b")
        XCTAssertTrue(try restarted!.run(progress: nil))
        // A second runner on the folder while one lives is refused (one `mmkd run` per output).
        XCTAssertThrowsError(try ExperimentRunner(spec: spec, output: folder + "/b")) { XCTAssertTrue("\($0)".contains("in use by process"), "\($0)") }

        for cell in spec.cells() {
            let a = try XCTUnwrap(straight.result(of: cell), cell.label), b = try XCTUnwrap(restarted!.result(of: cell), cell.label)
            XCTAssertEqual(a.bestTop1, b.bestTop1, cell.label)
            XCTAssertEqual(a.lastTop1, b.lastTop1, cell.label)
            XCTAssertEqual(a.bestEpoch, b.bestEpoch, cell.label)
            let ma = try RunDirectory(folder + "/a/" + cell.path).metrics(), mb = try RunDirectory(folder + "/b/" + cell.path).metrics()
            XCTAssertEqual(ma.map { $0["train_loss"] as? Double }, mb.map { $0["train_loss"] as? Double }, cell.label)
        }
        restarted = nil
        // A finished grid runs nothing again.
        let before = try FileManager.default.attributesOfItem(atPath: folder + "/b/cells/two-to-r8/mmkd/seed2/last.safetensors")[.modificationDate] as? Date
        XCTAssertTrue(try ExperimentRunner(spec: spec, output: folder + "/b").run(progress: nil))
        let after = try FileManager.default.attributesOfItem(atPath: folder + "/b/cells/two-to-r8/mmkd/seed2/last.safetensors")[.modificationDate] as? Date
        XCTAssertEqual(before, after)
    }

    func testReportAggregatesSeedsAndComputesARI() throws {
        let spec = try ExperimentSpec.load(try writeSpec())
        let runner = try ExperimentRunner(spec: spec, output: folder + "/r")
        try runner.run(progress: nil)
        let report = try ExperimentReport(output: folder + "/r")
        XCTAssertEqual(report.finished, report.planned)
        let row = try XCTUnwrap(report.entries["two-to-r8"])
        for name in ["alone", "aver", "mmkd"] {
            let cells = spec.cells().filter { $0.path.contains("/\(name)/") || $0.path.hasPrefix("\(name)/") }
            let results = try cells.map { try XCTUnwrap(runner.result(of: $0)) }
            let entry = try XCTUnwrap(row[name], name)
            XCTAssertEqual(entry.seeds, [1, 2])
            XCTAssertEqual(entry.best.values, results.map(\.bestTop1), name)
            XCTAssertEqual(entry.last.values, results.map(\.lastTop1), name)
            let m = entry.best.mean, sd = entry.best.std
            XCTAssertEqual(m, results.map(\.bestTop1).reduce(0, +) / 2, accuracy: 1e-12)
            XCTAssertEqual(sd, abs(results[0].bestTop1 - results[1].bestTop1) / 2.0.squareRoot(), accuracy: 1e-9, "sample standard deviation")
        }
        let (a, o, s) = (row["mmkd"]!.best.mean, row["aver"]!.best.mean, row["alone"]!.best.mean)
        if o != s {
            XCTAssertEqual(try XCTUnwrap(report.ari(against: "aver", epoch: .best)), 100 * (a - o) / (o - s), accuracy: 1e-9)
        }
        XCTAssertNotNil(report.teachers["two-to-r8"], "the pair's teacher evaluation is read")
        let files = try report.write()
        let markdown = try String(contentsOf: files[0], encoding: .utf8)
        XCTAssertTrue(markdown.contains("## Top-1 at the best epoch") && markdown.contains("## Top-1 at the last epoch") && markdown.contains("## ARI of mmkd"))
        XCTAssertTrue(markdown.contains("| student alone | " + row["alone"]!.best.text))
        let csv = try String(contentsOf: files[1], encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 1 + 3)
        XCTAssertTrue(csv[0].hasPrefix("pair,student,teachers,method"))
    }

    func testBadExperimentFilesNameWhatIsWrong() throws {
        func message(_ path: String) -> String {
            do { _ = try ExperimentSpec.load(path); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(folder + "/none.yaml").contains("cannot read"))
        let kd = try writeSpec(methods: "[kd]")
        XCTAssertTrue(message(kd).contains("kd") && message(kd).contains("exactly one teacher"), message(kd))
        let unknown = try writeSpec(methods: "[{name: x, method: nonsense}]")
        XCTAssertTrue(message(unknown).contains("unknown method 'nonsense'"), message(unknown))
        let bad = try writeSpec(methods: "[{method: mmkd, regressor: 5x5}]")
        XCTAssertTrue(message(bad).contains("regressor must be 1x1 or convs"), message(bad))
        let noSeeds = try writeSpec(methods: "[alone]").replacingOccurrences(of: ".yaml", with: "-2.yaml")
        try (try String(contentsOfFile: try writeSpec(methods: "[alone]"), encoding: .utf8)).replacingOccurrences(of: "seeds: [1, 2]", with: "seeds: one")
            .write(toFile: noSeeds, atomically: true, encoding: .utf8)
        XCTAssertTrue(message(noSeeds).contains(noSeeds) && message(noSeeds).contains("seeds"), message(noSeeds))
        XCTAssertTrue(message(kd).hasPrefix(kd), "errors start with the file's path")
    }

    func testUnknownKeysTypesAndSyntaxErrorsNameTheLineAndColumn() throws {
        func message(_ yaml: String) -> String {
            do { _ = try ExperimentSpec.parse(yaml, path: "e.yaml"); return "" } catch { return "\(error)" }
        }
        let good = try String(contentsOfFile: try writeSpec(), encoding: .utf8)
        XCTAssertEqual(message(good), "")
        // A misspelt budget key (it used to run all 50,000 images) and a misspelt method key (β = 100 ran).
        let limit = message(good.replacingOccurrences(of: "batch_size: 8", with: "batch_size: 8, train_limt: 300"))
        XCTAssertEqual(limit, "e.yaml:4:36: budget: unknown key 'train_limt'; did you mean 'train_limit'? (known: epochs, train_limit, test_limit, batch_size, lr, milestones, lr_decay, momentum, weight_decay, loader_threads)")
        let beta = message(good.replacingOccurrences(of: "buffer_size: 16", with: "betta: 10"))
        XCTAssertTrue(beta.hasPrefix("e.yaml:10:") && beta.contains("methods[2]: unknown key 'betta'; did you mean 'beta'?"), beta)
        let nested = message(good.replacingOccurrences(of: "train: {seed: 3, epochs: 1}", with: "train: {seed: 3, epoch: 1}"))
        XCTAssertTrue(nested.hasPrefix("e.yaml:7:") && nested.contains("teachers[1].train: unknown key 'epoch'; did you mean 'epochs'?"), nested)
        let top = message(good + "\nseed: 4\n")
        XCTAssertTrue(top.contains("top level: unknown key 'seed'; did you mean 'seeds'?"), top)
        XCTAssertTrue(message("name: a\nname: b\n").contains("e.yaml:2:1: name: the key 'name' appears twice (first at 1:1)"))
        // A wrong type points at the value.
        let type = message(good.replacingOccurrences(of: "epochs: 2,", with: "epochs: two,"))
        XCTAssertEqual(type, "e.yaml:4:18: budget.epochs: expected Int, got 'two'")
        // Syntax errors carry the position too.
        let syntax = message("name: tiny\nseeds: [1, 2\nbudget: {epochs: 1}\n")
        XCTAssertTrue(syntax.hasPrefix("e.yaml:3:") && syntax.contains("not valid YAML"), syntax)
        XCTAssertEqual(message("name: [[a]]\n"), "e.yaml:1:7: name: expected a single value, got a list")
        // Nesting that would exhaust the recursive parser's stack (5000 levels crashed it).
        XCTAssertEqual(message("name: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)),
                       "e.yaml:1:70: nested more than 64 levels deep")
        XCTAssertEqual(message("name:\n" + (1..<200).map { String(repeating: " ", count: $0) + "-\n" }.joined()),
                       "e.yaml:64:64: nested more than 64 levels deep")
        XCTAssertEqual(message("name: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['  # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n")
                       .contains("nested"), false, "brackets in quotes and comments do not count")
        XCTAssertEqual(StrictYAML.suggestion(for: "zzz", among: ["epochs", "seeds"]), nil)
        XCTAssertEqual(StrictYAML.editDistance("kitten", "sitting"), 3)
    }

    func testAFinishedCellWithAnotherConfigurationIsNotSilentlyReused() throws {
        let spec = try ExperimentSpec.load(try writeSpec(methods: "[alone]"))
        try ExperimentRunner(spec: spec, output: folder + "/c").run(progress: nil)
        var changed = spec
        changed.budget.learningRate = 0.01
        XCTAssertThrowsError(try ExperimentRunner(spec: changed, output: folder + "/c").run(progress: nil)) { error in
            XCTAssertTrue("\(error)".contains("other settings") && "\(error)".contains("(now 0.01)"), "\(error)")
        }
    }
}

/// Grad-CAM against finite differences: shifting channel c of the feature map by ε everywhere
/// changes the class logit by ε·H·W·α_c.
final class GradCAMTests: XCTestCase {
    func testChannelWeightsMatchFiniteDifferences() throws {
        Initialization.seed(3)
        let model = try ModelZoo.make("resnet8", classes: 10)
        model.eval()
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.randomNormal([2, 3, 16, 16], generator: &rng)
        let classes = [3, 7]
        let maps = GradCAM.maps(model: model, batch: x, classes: classes)
        XCTAssertEqual(maps.count, 2)

        let a = withoutGrad { model.features(x).features.dropLast().last! }
        let (c, h, w) = (a.shape[1], a.shape[2], a.shape[3])
        for (i, cls) in classes.enumerated() {
            let ai = Tensor(Array(a.scalars[(i * c * h * w)..<((i + 1) * c * h * w)]), shape: [1, c, h, w])
            func logit(_ t: Tensor) -> Double { Double(withoutGrad { model.classify(penultimate: t) }.scalars[cls]) }
            let eps: Float = 1e-2
            let alphas = (0..<c).map { ch -> Double in
                func shifted(_ s: Float) -> Tensor {
                    var v = ai.scalars
                    for p in 0..<(h * w) { v[ch * h * w + p] += s }
                    return Tensor(v, shape: ai.shape)
                }
                return (logit(shifted(eps)) - logit(shifted(-eps))) / (2 * Double(eps) * Double(h * w))
            }
            var cam = [Float](repeating: 0, count: h * w)
            for ch in 0..<c { for p in 0..<(h * w) { cam[p] += Float(alphas[ch]) * ai.scalars[ch * h * w + p] } }
            cam = cam.map { max($0, 0) }
            var expected = [Float](repeating: 0, count: 16 * 16)
            // Bilinear, align_corners=False, from h×w to 16×16.
            for y in 0..<16 {
                let fy = min(max((Float(y) + 0.5) * Float(h) / 16 - 0.5, 0), Float(h - 1)), y0 = Int(fy), y1 = min(y0 + 1, h - 1), wy = fy - Float(y0)
                for xx in 0..<16 {
                    let fx = min(max((Float(xx) + 0.5) * Float(w) / 16 - 0.5, 0), Float(w - 1)), x0 = Int(fx), x1 = min(x0 + 1, w - 1), wx = fx - Float(x0)
                    expected[y * 16 + xx] = (cam[y0 * w + x0] * (1 - wx) + cam[y0 * w + x1] * wx) * (1 - wy) + (cam[y1 * w + x0] * (1 - wx) + cam[y1 * w + x1] * wx) * wy
                }
            }
            let top = expected.max()!
            XCTAssertGreaterThan(top, 0)
            for (m, e) in zip(maps[i], expected) { XCTAssertEqual(m, e / top, accuracy: 2e-3, "image \(i)") }
        }
    }

    func testHTMLReportIsSelfContained() throws {
        let folder = NSTemporaryDirectory() + "mmkd-html-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try TinyCIFAR.write(to: folder, seed: 5)
        Initialization.seed(9)
        try ModelCheckpoint.save(try ModelZoo.make("resnet8", classes: 10), metadata: ["arch": "resnet8"], to: URL(fileURLWithPath: folder + "/t.safetensors"))
        let yaml = """
        name: html
        data: cifar10:\(folder)
        seeds: [1]
        budget: {epochs: 2, batch_size: 8, loader_threads: 1}
        teachers: [{name: t1, arch: resnet8, checkpoint: \(folder)/t.safetensors}, {name: t2, arch: resnet8, checkpoint: \(folder)/t.safetensors}]
        pairs: [{name: p, student: resnet8, teachers: [t1, t2]}]
        methods: [alone, {name: aver-b0, method: aver}, {name: mmkd, method: mmkd, buffer_size: 16, meta_freq: 2}, {name: mmkd-nobuf, method: mmkd, buffer: false, meta_freq: 2}]
        """
        try yaml.write(toFile: folder + "/e.yaml", atomically: true, encoding: .utf8)
        let spec = try ExperimentSpec.load(folder + "/e.yaml")
        try ExperimentRunner(spec: spec, output: folder + "/out").run(progress: nil)
        let report = try ExperimentReport(output: folder + "/out")
        let figures = try report.writeGradCAMFigures(images: 3)
        XCTAssertNotNil(figures["p"])
        XCTAssertEqual(report.gradCAMNetworks(pair: spec.pairs[0]).map(\.label), ["student alone", "aver-b0", "mmkd", "mmkd-nobuf", "teacher t1"])
        let html = try String(contentsOf: try HTMLReport(report: report).write(gradcam: figures), encoding: .utf8)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>") && html.hasSuffix("</html>\n"))
        XCTAssertGreaterThanOrEqual(html.components(separatedBy: "<svg").count - 1, 4, "curves, two weight charts, ablation bars")
        XCTAssertTrue(html.contains("MMKD ablations") && html.contains("no hard buffer"))
        XCTAssertTrue(html.contains("learned logit weight per teacher"))
        XCTAssertTrue(html.contains("data:image/svg+xml;base64,"), "the labelled Grad-CAM figure is embedded")
        let figureFolder = figures["p"]!.deletingLastPathComponent().path
        let svg = try String(contentsOfFile: figureFolder + "/gradcam.svg", encoding: .utf8)
        for label in ["test image", "student alone", "aver-b0", "mmkd-nobuf", "teacher t1"] { XCTAssertTrue(svg.contains(">\(label)</text>"), label) }
        let files = try FileManager.default.contentsOfDirectory(atPath: figureFolder)
        XCTAssertTrue(files.contains { $0.hasPrefix("student-alone-test") } && !files.contains { $0.contains(" ") }, "\(files)")
        XCTAssertFalse(html.contains("src=\"http") || html.contains("href=\"http") || html.contains("<script"), "nothing is fetched or run")
    }
}
