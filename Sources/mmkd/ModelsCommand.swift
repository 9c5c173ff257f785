import ArgumentParser
import Engine
import Foundation
import Models

/// `mmkd models`: the architectures with parameter counts, forward MFLOPs and feature shapes.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "models", abstract: "List the model zoo: parameters, MFLOPs per image at the native input size, feature maps.")

    @Option(help: "Classes of the classifier (default: 100 for CIFAR models, 120 for 224×224 ones).") var classes: Int?
    @Flag(help: "Print JSON instead of a table.") var json = false


    func run() throws {
        var rows: [[String: Any]] = []
        for name in ModelZoo.allNames {
            let big = ModelZoo.imageNetNames.contains(name)
            let size = big ? 224 : 32
            let model = try ModelZoo.make(name, classes: classes ?? (big ? 120 : 100))
            model.eval()
            let x = Tensor.zeros([1, 3, size, size])
            let (out, flops) = FlopCounter.count { withoutGrad { model.features(x) } }
            rows.append(["name": name, "input": size, "parameters": model.parameterCount, "mflops": flops / 1e6,
                         "features": out.features.map { Array($0.shape.dropFirst()) }])
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("model                   input   parameters    MFLOPs  feature maps (C×H×W; last is the pooled vector)")
        for r in rows {
            let features = (r["features"] as! [[Int]]).map { $0.map(String.init).joined(separator: "×") }.joined(separator: " · ")
            print(String(format: "%@ %5d %12d %9.1f  %@", (r["name"] as! String).padding(toLength: 21, withPad: " ", startingAt: 0),
                         r["input"] as! Int, r["parameters"] as! Int, r["mflops"] as! Double, features))
        }
    }
}
