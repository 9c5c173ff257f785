import Checkpoints
import Datasets
import Engine
import Foundation
import Models
import NN

/// One regular distillation iteration for any method: the teachers' outputs for the batch, the
/// method's loss (`MultiTeacherObjective`), one SGD step of the learner (student, regressors, the
/// method's parts). It also keeps the per-epoch statistics of the teacher weights, the teachers'
/// accuracy (`teachers.json`) and writes `distiller.safetensors`. MMKD's iteration
/// (`MMKDIteration`) extends it with the hard buffer and the meta step.
public class DistillationStep: TrainingStep {
    public let config: DistillationConfiguration
    public let objective: MultiTeacherObjective
    public private(set) var teacherResults: TeacherEvaluation?
    var logitStats: WeightStatistics, featureStats: WeightStatistics

    public init(config: DistillationConfiguration, objective: MultiTeacherObjective) {
        self.config = config
        self.objective = objective
        logitStats = WeightStatistics(teachers: objective.teachers.count)
        featureStats = logitStats
    }

    /// A copy of `regular`'s set-up (for a method's own iteration built on it).
    init(_ regular: DistillationStep) {
        config = regular.config; objective = regular.objective; teacherResults = regular.teacherResults
        logitStats = regular.logitStats; featureStats = regular.featureStats
    }

    public var hyper: DistillationHyperparameters { config.hyper }
    public var method: any DistillationMethod { config.hyper.method }
    public var teachers: [FrozenTeacher] { objective.teachers }
    public var distillationLearner: DistillationLearner { objective.learner }
    public var learner: Module { objective.learner }
    public var model: any FeatureClassifier { objective.learner.student }
    public var resumePrefix: String { "learner" }
    public var label: String { method.name }
    public var checkpointMetadata: [String: String] {
        ["method": method.name, "teachers": config.teachers.map { "\($0.arch)=\($0.checkpoint)" }.joined(separator: ",")]
    }

    public func beginEpoch() {
        logitStats = WeightStatistics(teachers: teachers.count)
        featureStats = logitStats
    }

    /// The regular step on `batch`; returns the loss terms and the teachers' outputs it used.
    func regularStep(_ batch: Batch, index: Int, epoch: Int, optimizer: inout OptimizerDriver<SGD>) throws
        -> (terms: MultiTeacherObjective.Terms, outputs: [TeacherOutputs], result: StepResult) {
        let outputs = teachers.map { $0.outputs(batch.images, keeping: method.teacherMaps(hyper)) }
        let terms = objective.terms(images: batch.images, labels: batch.labels, teacherOutputs: outputs, part: .full(epoch: epoch),
                                    indices: batch.indices)
        let value = terms.total.item
        guard value.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch, batch: index, value: value) }
        optimizer.minimize(terms.total, of: objective.learner)
        if let w = terms.logitWeights { logitStats.add(w) }
        if let w = terms.featureWeights { featureStats.add(w) }
        let result = StepResult(loss: value, logits: terms.studentLogits, terms: [
            ("train_ce", terms.crossEntropy.item), ("train_logit_term", terms.logitTerm?.item ?? 0),
            ("train_feature_term", terms.featureTerm?.item ?? 0),
        ])
        return (terms, outputs, result)
    }

    public func run(_ batch: Batch, index: Int, batches: Int, epoch: Int, optimizer: inout OptimizerDriver<SGD>) throws -> StepResult {
        try regularStep(batch, index: index, epoch: epoch, optimizer: &optimizer).result
    }

    public var progressDetail: String { "" }
    public func resumeState() throws -> (tensors: [(String, Tensor)], metadata: [String: String]) { ([], [:]) }
    public func restore(from contents: SafeTensors.Contents, path: String) throws {}

    public func epochMetrics() -> [String: Any] {
        var entry: [String: Any] = ["meta_steps": 0, "meta_seconds": 0.0]
        if logitStats.count > 0 { entry["logit_weight_mean"] = logitStats.mean; entry["logit_weight_std"] = logitStats.std }
        if featureStats.count > 0 { entry["feature_weight_mean"] = featureStats.mean; entry["feature_weight_std"] = featureStats.std }
        return entry
    }

    public func epochSummary() -> String {
        logitStats.count > 0 ? "  logit w " + logitStats.mean.map { String(format: "%.3f", $0) }.joined(separator: "/") : ""
    }

    /// The regressors and the method's meta parts, when there are any.
    public func saveEpochFiles(in run: RunDirectory, metadata: [String: String]) throws {
        let learner = objective.learner
        guard !learner.regressors.isEmpty || objective.metaParts != nil else { return }
        let parts = learner.stateDict.filter { $0.0.hasPrefix("regressors.") } + (objective.metaParts?.stateDict.map { ("meta." + $0.0, $0.1) } ?? [])
        try SafeTensors.write(parts, metadata: metadata, to: run.file("distiller.safetensors"))
    }

    // MARK: Teachers

    /// Each teacher's test accuracy and the ensemble's (mean of the teachers' probabilities),
    /// measured once per run directory (`teachers.json`).
    @discardableResult
    /// With `replicas`, the processes share the work and rank 0 writes the file.
    public func evaluateTeachers(run: RunDirectory, testLoader: BatchLoader, progress: ProgressLine? = ProgressLine(),
                                 replicas: (any ReplicaGroup)? = nil) throws -> TeacherEvaluation {
        if teacherResults == nil { loadTeacherResults(from: run) }
        // Every process must take the same branch (the measurement is collective).
        if let replicas, !replicas.agree(on: teacherResults == nil ? 0 : 1) { teacherResults = nil }
        if let teacherResults { return teacherResults }
        let writer = (replicas?.rank ?? 0) == 0
        if writer { progress?.update("evaluating \(teachers.count) teacher\(teachers.count == 1 ? "" : "s") on \(testLoader.dataset.count) test images", force: true) }
        let result = try TeacherEvaluation.measure(teachers, loader: testLoader, replicas: replicas)
        if writer { try run.writeJSON(result, to: "teachers.json") }
        teacherResults = result
        return result
    }

    /// Reads `teachers.json` if it was measured for these teachers.
    func loadTeacherResults(from run: RunDirectory) {
        if let saved = try? JSONDecoder().decode(TeacherEvaluation.self, from: Data(contentsOf: run.file("teachers.json"))),
           saved.checkpoints == config.teachers.map(\.checkpoint) {
            teacherResults = saved
        }
    }

    // MARK: Summary

    public func summaryHeading(_ t: TrainingConfiguration) -> String {
        var text = "# \(method.name): \(config.teachers.map(\.arch).joined(separator: " + ")) → \(t.arch) on \(t.data)\n\n"
        if let teacherResults {
            text += "| teacher | checkpoint | test top-1 |\n|---|---|---:|\n"
            for (spec, r) in zip(config.teachers, teacherResults.teachers) { text += String(format: "| %@ | %@ | %.2f |\n", spec.arch, spec.checkpoint, r.top1) }
            text += String(format: "| ensemble (mean probability) | | %.2f |\n\n", teacherResults.ensemble.top1)
        }
        return text
    }

    public func summaryDetails() -> String {
        var text = "τ \(hyper.temperature), γ \(hyper.gamma), α \(hyper.alpha), β \(hyper.beta)"
        if hyper.regressedMap != nil { text += ", regressor \(hyper.effectiveRegressor.rawValue)" }
        text += method.describe(hyper)
        if hyper.compatOfficial { text += ", --compat official" }
        return text + "."
    }

    public var summaryColumns: [(title: String, value: ([String: Any]) -> String)] {
        func weights(_ key: String) -> ([String: Any]) -> String {
            { r in
                guard let m = r[key + "_mean"] as? [Double], let s = r[key + "_std"] as? [Double] else { return "" }
                return zip(m, s).map { String(format: "%.3f±%.3f", $0, $1) }.joined(separator: " ")
            }
        }
        return [("logit weights (mean ± std per teacher)", weights("logit_weight")), ("feature weights", weights("feature_weight"))]
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
