import Distillation
import Engine
import Foundation
import TestSupport
import XCTest

/// The training loop on a group of two threads (`ThreadReplicaGroup`, no MPI) against one process,
/// on TinyCIFAR's batch sequence: 20 steps at a learning rate that does not amplify round-off
/// (see `DataParallelTests`).
final class DataParallelTrainerTests: TinyCIFARTestCase {
    func configuration() -> TrainingConfiguration {
        var c = TrainingConfiguration(arch: "resnet8", data: "cifar10:\(folder!)")
        c.epochs = 4; c.batchSize = 8; c.learningRate = 1e-4; c.milestones = [3]; c.loaderThreads = 1
        return c
    }

    func losses(_ name: String) throws -> [Double] {
        try String(contentsOfFile: folder + "/runs/\(name)/steps.jsonl", encoding: .utf8).split(separator: "\n")
            .map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["loss"] as! Double }
    }

    func testTwoThreadReplicasTrainAsOneProcess() throws {
        try Trainer.supervised(configuration(), run: try RunDirectory(folder + "/runs/one"), resume: false).train(progress: nil)
        let config = configuration(), folder = self.folder!
        // Built one after the other (initialisation draws from one seeded generator), trained together.
        let trainers = try ThreadReplicaGroup.build(size: 2) { group in
            try Trainer.supervised(config, run: try RunDirectory(folder + "/runs/two"), resume: false, replicas: group)
        }
        nonisolated(unsafe) let shared = trainers
        _ = ThreadReplicaGroup.run(groups: trainers.map(\.1)) { group in try! shared[group.rank].0.train(progress: nil) }
        let a = try losses("one"), b = try losses("two")
        XCTAssertEqual(a.count, b.count)
        let worst = zip(a, b).map { abs($0 - $1) / abs($0) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 1e-4, "\(a) vs \(b)")
    }
}
