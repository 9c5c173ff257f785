import Checkpoints
import Datasets
import Engine
import Foundation
import Models
import NN

/// Distils frozen teachers into a student with any `DistillationMethod`, evaluating after every
/// epoch. The run directory receives `config.json`, `teachers.json` (each teacher's and the
/// ensemble's test accuracy), `metrics.jsonl` (with per-teacher weight statistics), `summary.md`,
/// the student as `best`/`last.safetensors`, the regressors and meta networks as
/// `distiller.safetensors`, and `resume.safetensors`: a run resumed from it ends bit-identical to an
/// uninterrupted one (student, regressors, momentum, meta networks, Adam state and hard buffer).
public final class DistillationTrainer {
    public let config: DistillationConfiguration
    public let run: RunDirectory
    public let teachers: [FrozenTeacher]
    public let learner: DistillationLearner
    public let metaNetworks: MMKDMetaNetworks?
    public let objective: MultiTeacherObjective
    public let trainLoader: BatchLoader
    public let testLoader: BatchLoader
    public let classNames: [String]
    public private(set) var optimizer: OptimizerDriver<SGD>
    public private(set) var metaStep: MMKDMetaStep?
    public private(set) var buffer: HardSampleBuffer
    public private(set) var nextEpoch = 0
    public private(set) var bestTop1 = 0.0
    public private(set) var teacherResults: TeacherEvaluation?
    let schedule: MultiStepLR

    var hyper: DistillationHyperparameters { config.hyper }
    var training: TrainingConfiguration { config.training }

    public init(config: DistillationConfiguration, run: RunDirectory, resume: Bool) throws {
        self.config = config
        self.run = run
        let method = config.hyper.method
        if let problem = method.teacherCountProblem(config.teachers.count) { throw DistillationError.teacherCount(problem) }
        let t = config.training
        let spec = try DatasetSpec(parsing: t.data)
        let (trainSet, testSet) = try spec.load()
        let train: any ImageDataset = t.trainLimit.map { SubsetDataset(trainSet, count: $0, seed: t.seed) } ?? trainSet
        guard train.count >= t.batchSize else {
            throw DistillationError.featureShape("the training set has \(train.count) images, fewer than one batch of \(t.batchSize) (distillation drops partial batches)")
        }
        // Full batches only: MMKD's feature meta network is tied to the batch size.
        trainLoader = BatchLoader(dataset: train, batchSize: t.batchSize, shuffle: true, dropLast: true,
                                  pipeline: spec.pipeline(train: true), seed: t.seed, workers: t.loaderThreads)
        testLoader = BatchLoader(dataset: testSet, batchSize: 256, shuffle: false, dropLast: false,
                                 pipeline: spec.pipeline(train: false), seed: 0, workers: t.loaderThreads)
        classNames = trainSet.classNames
        teachers = try config.teachers.map { try FrozenTeacher.load(arch: $0.arch, checkpoint: $0.checkpoint, classes: trainSet.classCount) }

        Initialization.seed(t.seed)
        let student = try ModelZoo.make(t.arch, classes: trainSet.classCount)
        // Feature shapes, from one test image through every network.
        let probe = try BatchLoader(dataset: testSet, batchSize: 2, shuffle: false, dropLast: false, pipeline: spec.pipeline(train: false),
                                    seed: 0, workers: 1).batches(epoch: 0).next()!.images
        student.eval()
        let studentFeatures = withoutGrad { student.features(probe).features }
        student.train()
        let teacherProbe = teachers[0].outputs(probe)
        var regressors: [FeatureRegressor] = []
        if let regressed = config.hyper.regressedMap {
            let index = regressed == .hint ? 2 : studentFeatures.count - 2
            let sChannels = studentFeatures[index].shape[1]
            for teacher in teachers {
                let o = teacher.outputs(probe)
                let map = regressed == .hint ? o.hint : o.penultimate
                regressors.append(FeatureRegressor(studentChannels: sChannels, teacherChannels: map.shape[1], form: config.hyper.effectiveRegressor))
            }
        }
        var vid: [VariationalInformationLayer] = []
        var semckd: CrossLayerAttention? = nil
        if method == .vid {
            vid = Tensor.stagePairs(student: studentFeatures, teacher: teacherProbe.stages).map {
                VariationalInformationLayer(studentChannels: $0.student.shape[1], teacherChannels: $0.teacher.shape[1])
            }
        } else if method == .semckd {
            semckd = CrossLayerAttention(studentChannels: studentFeatures[1..<(studentFeatures.count - 1)].map { $0.shape[1] },
                                         teacherChannels: teacherProbe.stages.map { $0.shape[1] }, batchSize: t.batchSize)
        }
        var crd: ContrastiveRepresentation? = nil
        if method == .crd {
            crd = ContrastiveRepresentation(studentDim: studentFeatures[studentFeatures.count - 2].shape[1], teacherDim: teacherProbe.penultimate.shape[1],
                                            labels: (0..<train.count).map { train.label(at: $0) }, seed: t.seed)
        }
        learner = DistillationLearner(student: student, regressors: regressors, vid: vid, semckd: semckd, crd: crd)
        metaNetworks = method == .mmkd ? MMKDMetaNetworks(teachers: teachers.count, classes: trainSet.classCount, batchSize: t.batchSize) : nil
        objective = MultiTeacherObjective(hyper: config.hyper, learner: learner, teachers: teachers, metaNetworks: metaNetworks)
        metaStep = method == .mmkd ? MMKDMetaStep(hyper: config.hyper) : nil
        buffer = HardSampleBuffer(capacity: config.hyper.bufferSize, seed: t.seed &+ 0x4D4D_4B44, officialFill: config.hyper.compatOfficial)
        schedule = MultiStepLR(baseRate: t.learningRate, milestones: t.milestones, gamma: t.gamma)
        optimizer = OptimizerDriver(SGD(learningRate: t.learningRate, momentum: t.momentum, weightDecay: t.weightDecay, nesterov: t.nesterov))

        if resume, FileManager.default.fileExists(atPath: run.file("resume.safetensors").path) {
            try loadResumeState()
        } else {
            try run.writeJSON(config, to: "config.json")
            try? FileManager.default.removeItem(at: run.file("metrics.jsonl"))
        }
        if let saved = try? JSONDecoder().decode(TeacherEvaluation.self, from: Data(contentsOf: run.file("teachers.json"))),
           saved.checkpoints == config.teachers.map(\.checkpoint) {
            teacherResults = saved
        }
    }

    // MARK: Teachers

    /// Each teacher's test accuracy and the ensemble's (mean of the teachers' probabilities),
    /// computed once per run directory.
    @discardableResult
    public func evaluateTeachers(progress: ProgressLine? = ProgressLine()) throws -> TeacherEvaluation {
        if let teacherResults { return teacherResults }
        progress?.update("evaluating \(teachers.count) teacher\(teachers.count == 1 ? "" : "s") on \(testLoader.dataset.count) test images", force: true)
        let result = try TeacherEvaluation.measure(teachers, loader: testLoader)
        try run.writeJSON(result, to: "teachers.json")
        teacherResults = result
        return result
    }

    // MARK: Resume state

    func saveResumeState() throws {
        var tensors = learner.stateDict.map { ("learner." + $0.0, $0.1) }
        for (name, state) in optimizer.states.sorted(by: { $0.key < $1.key }) {
            if let b = state.momentumBuffer { tensors.append(("optimizer." + name + ".momentum_buffer", b)) }
        }
        var metadata = ["next_epoch": "\(nextEpoch)", "best_top1": "\(bestTop1)",
                        "config": String(decoding: try JSONEncoder().encode(config), as: UTF8.self)]
        if let metaNetworks, let metaStep {
            tensors += metaNetworks.stateDict.map { ("meta." + $0.0, $0.1) }
            for (name, s) in metaStep.adam.states.sorted(by: { $0.key < $1.key }) {
                tensors += [("adam." + name + ".exp_avg", s.expAvg), ("adam." + name + ".exp_avg_sq", s.expAvgSq)]
                metadata["adam." + name + ".step"] = "\(s.step)"
            }
            if buffer.count > 0 {
                tensors.append(("buffer.images", Tensor.stack(buffer.images)))
                tensors.append(("buffer.labels", Tensor(buffer.labels.map(Float.init), shape: [buffer.count])))
                for k in 0..<(buffer.cached.first?.count ?? 0) { tensors.append(("buffer.cached.\(k)", Tensor.stack(buffer.cached.map { $0[k] }))) }
            }
            metadata["buffer.generator"] = String(decoding: try JSONEncoder().encode(buffer.generator), as: UTF8.self)
        }
        try SafeTensors.write(tensors, metadata: metadata, to: run.file("resume.safetensors"))
    }

    func loadResumeState() throws {
        let url = run.file("resume.safetensors")
        let contents = try SafeTensors.read(url)
        guard let configJSON = contents.metadata["config"],
              let saved = try? JSONDecoder().decode(DistillationConfiguration.self, from: Data(configJSON.utf8)) else {
            throw TrainingError.resumeMismatch(path: url.path, reason: "it holds no distillation configuration")
        }
        guard saved == config else {
            throw TrainingError.resumeMismatch(path: url.path, reason: "it was written by a run with another configuration (\(configJSON)); use another --name or drop --resume")
        }
        let tensors = contents.tensors
        func prefixed(_ p: String) -> [String: Tensor] {
            Dictionary(uniqueKeysWithValues: tensors.filter { $0.key.hasPrefix(p) }.map { (String($0.key.dropFirst(p.count)), $0.value) })
        }
        try ModelCheckpoint.load(prefixed("learner."), into: learner, path: url.path)
        for (name, t) in prefixed("optimizer.") where name.hasSuffix(".momentum_buffer") {
            optimizer.states[String(name.dropLast(16))] = SGD.State(momentumBuffer: t)
        }
        if let metaNetworks, metaStep != nil {
            try ModelCheckpoint.load(prefixed("meta."), into: metaNetworks, path: url.path)
            let adam = prefixed("adam.")
            for (name, avg) in adam where name.hasSuffix(".exp_avg") {
                let key = String(name.dropLast(8))
                guard let sq = adam[key + ".exp_avg_sq"], let step = contents.metadata["adam." + key + ".step"].flatMap(Int.init) else {
                    throw TrainingError.resumeMismatch(path: url.path, reason: "incomplete Adam state for \(key)")
                }
                metaStep!.adam.states[key] = Adam.State(step: step, expAvg: avg, expAvgSq: sq)
            }
            guard let generatorJSON = contents.metadata["buffer.generator"],
                  let generator = try? JSONDecoder().decode(RandomGenerator.self, from: Data(generatorJSON.utf8)) else {
                throw TrainingError.resumeMismatch(path: url.path, reason: "no hard-buffer generator state")
            }
            var restored = HardSampleBuffer(capacity: hyper.bufferSize, seed: 0, officialFill: hyper.compatOfficial)
            if let images = tensors["buffer.images"], let labels = tensors["buffer.labels"] {
                let cached = (0..<(teachers.count * 2)).compactMap { tensors["buffer.cached.\($0)"] }
                restored.restore(images: images, labels: labels.scalars.map { Int($0) }, cached: cached)
            }
            restored.generator = generator
            buffer = restored
        }
        nextEpoch = Int(contents.metadata["next_epoch"] ?? "0") ?? 0
        bestTop1 = Double(contents.metadata["best_top1"] ?? "0") ?? 0
        try run.keepMetrics(throughEpoch: nextEpoch)
    }

    // MARK: Training

    /// Runs the remaining epochs (all, or `stopAfter` of them); returns the last test result.
    @discardableResult
    public func train(progress: ProgressLine? = ProgressLine(), stopAfter: Int? = nil) throws -> EvaluationResult? {
        var last: EvaluationResult? = nil
        let end = stopAfter.map { min(training.epochs, nextEpoch + $0) } ?? training.epochs
        let method = hyper.method
        let metadata = ["arch": training.arch, "classes": "\(classNames.count)", "class_names": classNames.joined(separator: ","),
                        "data": training.data, "method": method.rawValue,
                        "teachers": config.teachers.map { "\($0.arch)=\($0.checkpoint)" }.joined(separator: ","),
                        "command": CommandLine.arguments.joined(separator: " ")]
        let batches = trainLoader.batchCount
        while nextEpoch < end {
            let epoch = nextEpoch
            let lr = schedule.rate(epoch: epoch)
            optimizer.optimizer.learningRate = lr
            learner.train()
            let start = Date()
            var seen = 0, correct = 0, metaSteps = 0
            var sums = (loss: 0.0, ce: 0.0, div: 0.0, feat: 0.0)
            var logitStats = WeightStatistics(teachers: teachers.count), featureStats = WeightStatistics(teachers: teachers.count)
            var metaSeconds = 0.0
            let iterator = trainLoader.batches(epoch: epoch)
            var batchIndex = 0
            while let batch = try iterator.next() {
                let outputs = teachers.map { $0.outputs(batch.images) }
                let terms = objective.terms(images: batch.images, labels: batch.labels, teacherOutputs: outputs, part: .full(epoch: epoch),
                                            indices: batch.indices)
                let value = terms.total.item
                guard value.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch, batch: batchIndex, value: value) }
                optimizer.minimize(terms.total, of: learner)
                let n = Double(batch.labels.count)
                seen += batch.labels.count
                correct += Evaluation.correct(terms.studentLogits, batch.labels).top1
                sums.loss += Double(value) * n
                sums.ce += Double(terms.crossEntropy.item) * n
                sums.div += Double(terms.logitTerm?.item ?? 0) * n
                sums.feat += Double(terms.featureTerm?.item ?? 0) * n
                if let w = terms.logitWeights { logitStats.add(w) }
                if let w = terms.featureWeights { featureStats.add(w) }

                if method == .mmkd, hyper.learnLogitWeights || hyper.learnFeatureWeights {
                    if hyper.useBuffer {
                        buffer.offer(images: batch.images, labels: batch.labels, studentLogits: terms.studentLogits,
                                     teacherOutputs: outputs.flatMap { [$0.logits, $0.penultimate] })
                    }
                    if batchIndex % hyper.metaFrequency == 0 || batchIndex == batches - 1 {
                        let metaStart = Date()
                        let (images, labels, hard): (Tensor, [Int], [TeacherOutputs])
                        if hyper.useBuffer {
                            let s = buffer.sample(training.batchSize)
                            images = s.images; labels = s.labels
                            hard = teachers.indices.map { k in
                                TeacherOutputs(logits: s.teacherOutputs[2 * k], penultimate: s.teacherOutputs[2 * k + 1], hint: s.teacherOutputs[2 * k + 1])
                            }
                        } else {
                            (images, labels, hard) = (batch.images, batch.labels, outputs)
                        }
                        metaStep!.run(objective: objective, optimizer: optimizer, images: images, labels: labels, teacherOutputs: hard)
                        metaSteps += 1
                        metaSeconds += Date().timeIntervalSince(metaStart)
                    }
                }
                batchIndex += 1
                let elapsed = Date().timeIntervalSince(start)
                let rate = Double(seen) / max(elapsed, 1e-9)
                let remaining = Double(batches - batchIndex) * Double(training.batchSize) / rate
                    + Double(end - epoch - 1) * Double(batches * training.batchSize) / rate
                progress?.update(String(format: "%@ epoch %d/%d  batch %d/%d  %.0f img/s  loss %.4f  acc %.2f%%  meta steps %d  ETA %@",
                                        method.rawValue, epoch + 1, training.epochs, batchIndex, batches, rate, sums.loss / Double(seen),
                                        100 * Double(correct) / Double(seen), metaSteps, ProgressLine.duration(remaining)))
            }
            let trainSeconds = Date().timeIntervalSince(start)
            let result = try Evaluation.evaluate(learner.student, loader: testLoader)
            last = result
            nextEpoch = epoch + 1
            let improved = result.top1 > bestTop1
            if improved { bestTop1 = result.top1 }
            let epochMetadata = metadata.merging(["epoch": "\(nextEpoch)", "top1": String(format: "%.2f", result.top1)]) { $1 }
            try ModelCheckpoint.save(learner.student, metadata: epochMetadata, to: run.file("last.safetensors"))
            if improved { try ModelCheckpoint.save(learner.student, metadata: epochMetadata, to: run.file("best.safetensors")) }
            if !learner.regressors.isEmpty || metaNetworks != nil {
                let parts = learner.stateDict.filter { $0.0.hasPrefix("regressors.") } + (metaNetworks?.stateDict.map { ("meta." + $0.0, $0.1) } ?? [])
                try SafeTensors.write(parts, metadata: epochMetadata, to: run.file("distiller.safetensors"))
            }
            let d = Double(max(seen, 1))
            var entry: [String: Any] = [
                "epoch": nextEpoch, "lr": Double(lr), "train_loss": sums.loss / d, "train_ce": sums.ce / d,
                "train_logit_term": sums.div / d, "train_feature_term": sums.feat / d,
                "train_top1": 100 * Double(correct) / d, "test_top1": result.top1, "test_top5": result.top5,
                "test_loss": result.loss, "images_per_s": Double(seen) / trainSeconds, "seconds": Date().timeIntervalSince(start),
                "meta_steps": metaSteps, "meta_seconds": metaSeconds,
            ]
            if logitStats.count > 0 { entry["logit_weight_mean"] = logitStats.mean; entry["logit_weight_std"] = logitStats.std }
            if featureStats.count > 0 { entry["feature_weight_mean"] = featureStats.mean; entry["feature_weight_std"] = featureStats.std }
            try run.appendMetrics(entry)
            try saveResumeState()
            let weightText = logitStats.count > 0 ? "  logit w " + logitStats.mean.map { String(format: "%.3f", $0) }.joined(separator: "/") : ""
            progress?.update(String(format: "%@ epoch %d/%d done  train %.2f%%  test top-1 %.2f%%  best %.2f%%  %.0f img/s%@",
                                    method.rawValue, nextEpoch, training.epochs, 100 * Double(correct) / d, result.top1, bestTop1,
                                    Double(seen) / trainSeconds, weightText), force: true)
            progress?.finish()
        }
        try writeSummary()
        return last
    }

    /// `summary.md`: method, teachers (with their accuracy), recipe, best and last accuracy, and the
    /// per-epoch table with the teacher weights.
    public func writeSummary() throws {
        let rows = run.metrics()
        let t = training
        var text = "# \(hyper.method.rawValue): \(config.teachers.map(\.arch).joined(separator: " + ")) → \(t.arch) on \(t.data)\n\n"
        if let teacherResults {
            text += "| teacher | checkpoint | test top-1 |\n|---|---|---:|\n"
            for (spec, r) in zip(config.teachers, teacherResults.teachers) { text += String(format: "| %@ | %@ | %.2f |\n", spec.arch, spec.checkpoint, r.top1) }
            text += String(format: "| ensemble (mean probability) | | %.2f |\n\n", teacherResults.ensemble.top1)
        }
        text += "Epochs \(nextEpoch)/\(t.epochs), batch \(t.batchSize), lr \(t.learningRate) (×\(t.gamma) at \(t.milestones)), momentum \(t.momentum)"
        text += "\(t.nesterov ? " Nesterov" : ""), weight decay \(t.weightDecay), seed \(t.seed)\(t.trainLimit.map { ", \($0) training images" } ?? ""). "
        text += "τ \(hyper.temperature), γ \(hyper.gamma), α \(hyper.alpha), β \(hyper.beta)"
        if hyper.regressedMap != nil { text += ", regressor \(hyper.effectiveRegressor.rawValue)" }
        if hyper.method == .mmkd {
            text += ", meta lr \(hyper.metaLearningRate), meta weight decay \(hyper.metaWeightDecay), meta every \(hyper.metaFrequency) iterations"
            text += ", hard buffer \(hyper.useBuffer ? "\(hyper.bufferSize)" : "off"), hypergradient \(hyper.hypergradient.rawValue)"
            if hyper.useBuffer && buffer.officialFill && hyper.bufferSize % t.batchSize != 0 {
                text += " (official buffer: \(hyper.bufferSize) is not a multiple of the batch, so it never fills and holds \(buffer.count) samples)"
            }
            if !hyper.learnLogitWeights { text += ", logit weights uniform" }
            if !hyper.learnFeatureWeights { text += ", feature weights uniform" }
        }
        if hyper.compatOfficial { text += ", --compat official" }
        text += ".\n\n"
        if let lastRow = rows.last {
            text += String(format: "Last epoch: test top-1 %.2f%%. Best top-1: %.2f%%.\n\n", lastRow["test_top1"] as? Double ?? 0, bestTop1)
        }
        text += "| epoch | lr | train loss | train top-1 | test top-1 | img/s | logit weights (mean ± std per teacher) | feature weights |\n"
        text += "|---:|---:|---:|---:|---:|---:|---|---|\n"
        func weights(_ r: [String: Any], _ key: String) -> String {
            guard let m = r[key + "_mean"] as? [Double], let s = r[key + "_std"] as? [Double] else { return "" }
            return zip(m, s).map { String(format: "%.3f±%.3f", $0, $1) }.joined(separator: " ")
        }
        for r in rows {
            text += String(format: "| %d | %.4g | %.4f | %.2f | %.2f | %.0f | %@ | %@ |\n", r["epoch"] as? Int ?? 0, r["lr"] as? Double ?? 0,
                           r["train_loss"] as? Double ?? 0, r["train_top1"] as? Double ?? 0, r["test_top1"] as? Double ?? 0,
                           r["images_per_s"] as? Double ?? 0, weights(r, "logit_weight"), weights(r, "feature_weight"))
        }
        try run.writeText(text, to: "summary.md")
    }
}

/// Running mean and standard deviation of per-sample teacher weights `[B, K]`, per teacher.
struct WeightStatistics {
    var sum: [Double], sumSquares: [Double]
    var count = 0

    init(teachers: Int) { sum = Array(repeating: 0, count: teachers); sumSquares = sum }

    mutating func add(_ weights: Tensor) {
        let k = sum.count
        let v = weights.scalars
        for (i, w) in v.enumerated() { sum[i % k] += Double(w); sumSquares[i % k] += Double(w) * Double(w) }
        count += v.count / k
    }

    var mean: [Double] { sum.map { $0 / Double(max(count, 1)) } }
    var std: [Double] { zip(sum, sumSquares).map { s, q in let m = s / Double(max(count, 1)); return max(q / Double(max(count, 1)) - m * m, 0).squareRoot() } }
}
