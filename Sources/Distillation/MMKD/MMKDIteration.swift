import Checkpoints
import Datasets
import Engine
import Foundation
import NN

/// One MMKD iteration (DESIGN.md §3): the regular step; the batch offered to the hard buffer; and,
/// every `metaFrequency` iterations and at the last of an epoch, the meta step (`MMKDMetaStep`) on a
/// draw from the buffer (or the batch itself with the buffer off), whose cached teacher outputs
/// spare the teachers. Used by the trainer and by `mmkd bench distill` alike. Resume files get the
/// meta networks, their Adam state, the buffer and its generator.
public final class MMKDIteration: DistillationStep {
    public private(set) var metaStep: MMKDMetaStep
    public var buffer: HardSampleBuffer
    var metaSteps = 0, metaSeconds = 0.0
    /// The sum over this epoch's meta steps of the hypergradient's L2 norm (all meta parameters).
    var hypergradientNorms = 0.0

    override init(_ regular: DistillationStep) {
        let hyper = regular.config.hyper
        metaStep = MMKDMetaStep(hyper: hyper)
        buffer = HardSampleBuffer(capacity: hyper.bufferSize, seed: regular.config.training.seed &+ 0x4D4D_4B44, officialFill: hyper.compatOfficial)
        super.init(regular)
    }

    /// The meta-weight networks.
    public var metaNetworks: MMKDMetaNetworks { objective.metaParts as! MMKDMetaNetworks }
    /// Whether meta steps run at all (not when both weight kinds are ablated to uniform).
    var learnsWeights: Bool { hyper.learnLogitWeights || hyper.learnFeatureWeights }

    public override func beginEpoch() {
        super.beginEpoch()
        metaSteps = 0; metaSeconds = 0; hypergradientNorms = 0
    }

    public override func run(_ batch: Batch, index: Int, batches: Int, epoch: Int, optimizer: inout OptimizerDriver<SGD>) throws -> StepResult {
        let (terms, outputs, result) = try regularStep(batch, index: index, epoch: epoch, optimizer: &optimizer)
        guard learnsWeights else { return result }
        offer(batch, studentLogits: terms.studentLogits, teacherOutputs: outputs)
        if index % hyper.metaFrequency == 0 || index == batches - 1 {
            let start = Date()
            metaStep(current: (batch.images, batch.labels, outputs), optimizer: optimizer)
            metaSteps += 1
            metaSeconds += Date().timeIntervalSince(start)
        }
        return result
    }

    /// Offers a regular batch to the hard buffer (when the buffer is on). In a data-parallel step
    /// the whole batch is offered, every process's slice gathered, so that every process keeps the
    /// buffer one process would.
    public func offer(_ batch: Batch, studentLogits: Tensor, teacherOutputs: [TeacherOutputs]) {
        guard hyper.useBuffer else { return }
        guard let group = Replicas.current else {
            buffer.offer(images: batch.images, labels: batch.labels, studentLogits: studentLogits, teacherOutputs: teacherOutputs)
            return
        }
        buffer.offer(images: batch.images.wholeBatchValues(group), labels: group.gather(batch.labels),
                     studentLogits: studentLogits.wholeBatchValues(group),
                     cachedBatches: teacherOutputs.flatMap { $0.wholeBatchCachedParts(group) })
    }

    /// The meta step on a buffer draw of one batch, or on `current` with the buffer off.
    public func metaStep(current: (images: Tensor, labels: [Int], outputs: [TeacherOutputs]), optimizer: OptimizerDriver<SGD>) {
        var (images, labels, hard): (Tensor, [Int], [TeacherOutputs])
        if hyper.useBuffer {
            (images, labels, hard) = buffer.sample(config.training.batchSize)
            if let group = Replicas.current {
                // Every process drew the same whole batch; each takes its slice.
                let share = group.share(of: labels.count)
                let slice = { (t: Tensor) in t.slice(axis: 0, share) }
                (images, labels, hard) = (slice(images), Array(labels[share]), hard.map {
                    TeacherOutputs(logits: slice($0.logits), penultimate: slice($0.penultimate), hint: $0.hint.map(slice),
                                   wholeBatchPenultimate: $0.penultimate)
                })
            }
        } else {
            (images, labels, hard) = current
        }
        let grads = metaStep.run(objective: objective, optimizer: optimizer, images: images, labels: labels, teacherOutputs: hard)
        // In the order of the names, so that the sum is the same in every process (a dictionary's order is not).
        hypergradientNorms += grads.sorted { $0.key < $1.key }.reduce(0.0) { sum, g in g.value.scalars.reduce(sum) { $0 + Double($1) * Double($1) } }.squareRoot()
    }

    public override var progressDetail: String { "meta steps \(metaSteps)" }

    public override func epochMetrics() -> [String: Any] {
        super.epochMetrics().merging(["meta_steps": metaSteps, "meta_seconds": metaSeconds,
                                      "hypergradient_norm": metaSteps > 0 ? hypergradientNorms / Double(metaSteps) : 0]) { $1 }
    }

    // MARK: Resume state

    public override func resumeState() throws -> (tensors: [(String, Tensor)], metadata: [String: String]) {
        var tensors = metaNetworks.stateDict.map { ("meta." + $0.0, $0.1) }
        var metadata: [String: String] = [:]
        for (name, s) in metaStep.adam.states.sorted(by: { $0.key < $1.key }) {
            tensors += [("adam." + name + ".exp_avg", s.expAvg), ("adam." + name + ".exp_avg_sq", s.expAvgSq)]
            metadata["adam." + name + ".step"] = "\(s.step)"
        }
        tensors += buffer.savedTensors(prefix: "buffer")
        metadata["buffer.generator"] = String(decoding: try JSONEncoder().encode(buffer.generator), as: UTF8.self)
        return (tensors, metadata)
    }

    public override func restore(from contents: SafeTensors.Contents, path: String) throws {
        let tensors = contents.tensors
        func prefixed(_ p: String) -> [String: Tensor] {
            Dictionary(uniqueKeysWithValues: tensors.filter { $0.key.hasPrefix(p) }.map { (String($0.key.dropFirst(p.count)), $0.value) })
        }
        try ModelCheckpoint.load(prefixed("meta."), into: metaNetworks, path: path)
        let adam = prefixed("adam.")
        for (name, avg) in adam where name.hasSuffix(".exp_avg") {
            let key = String(name.dropLast(8))
            guard let sq = adam[key + ".exp_avg_sq"], let step = contents.metadata["adam." + key + ".step"].flatMap(Int.init) else {
                throw TrainingError.resumeMismatch(path: path, reason: "incomplete Adam state for \(key)")
            }
            metaStep.adam.states[key] = Adam.State(step: step, expAvg: avg, expAvgSq: sq)
        }
        guard let generatorJSON = contents.metadata["buffer.generator"],
              let generator = try? JSONDecoder().decode(RandomGenerator.self, from: Data(generatorJSON.utf8)) else {
            throw TrainingError.resumeMismatch(path: path, reason: "no hard-buffer generator state")
        }
        buffer.restore(from: tensors, prefix: "buffer", teachers: teachers.count)
        buffer.generator = generator
    }

    public override func summaryDetails() -> String {
        var text = super.summaryDetails()
        if hyper.useBuffer && buffer.officialFill && hyper.bufferSize % config.training.batchSize != 0 {
            text.removeLast()
            text += " (official buffer: \(hyper.bufferSize) is not a multiple of the batch, so it never fills and holds \(buffer.count) samples)."
        }
        return text
    }
}
