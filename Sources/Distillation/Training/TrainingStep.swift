import Checkpoints
import Datasets
import Engine
import Models
import NN

/// The part of a training run that varies: what one iteration does with a batch, and what the step
/// adds to metrics, checkpoints, resume files and the summary. `Trainer` runs everything else
/// (epochs, schedule, evaluation, metrics, checkpoints, resume, progress) the same for supervised
/// training (`SupervisedStep`), every distillation method (`DistillationStep`) and MMKD
/// (`MMKDIteration`).
public protocol TrainingStep: AnyObject {
    /// The module the optimiser trains; saved in resume files under `resumePrefix`.
    var learner: Module { get }
    /// The network evaluated and checkpointed after every epoch.
    var model: any FeatureClassifier { get }
    /// The name of the learner's tensors in resume files (`model` or `learner`).
    var resumePrefix: String { get }
    /// What progress lines start with (a method's name), or "".
    var label: String { get }
    /// Metadata of the epoch checkpoints beyond architecture, classes and data.
    var checkpointMetadata: [String: String] { get }

    /// Clears the per-epoch statistics.
    func beginEpoch()
    /// One iteration on `batch` (number `index` of `batches` in `epoch`), stepping `optimizer`.
    /// A non-finite loss throws `TrainingError.nonFiniteLoss` before anything is updated.
    func run(_ batch: Batch, index: Int, batches: Int, epoch: Int, optimizer: inout OptimizerDriver<SGD>) throws -> StepResult
    /// What the progress line shows of the running epoch beyond loss and accuracy.
    var progressDetail: String { get }
    /// The epoch's metrics beyond the loop's own (per-teacher weights, meta steps).
    func epochMetrics() -> [String: Any]
    /// What the end-of-epoch line adds (the teachers' mean weights).
    func epochSummary() -> String
    /// Files the step writes after each epoch besides the checkpoints (`distiller.safetensors`).
    func saveEpochFiles(in run: RunDirectory, metadata: [String: String]) throws
    /// The step's own state for the resume file (meta networks, their Adam state, the hard buffer).
    func resumeState() throws -> (tensors: [(String, Tensor)], metadata: [String: String])
    /// Restores what `resumeState` saved.
    func restore(from contents: SafeTensors.Contents, path: String) throws
    /// The summary's first lines (a Markdown heading, the teachers' table).
    func summaryHeading(_ training: TrainingConfiguration) -> String
    /// The step's part of the summary sentence on hyper-parameters (after the recipe).
    func summaryDetails() -> String
    /// Extra columns of the summary's per-epoch table: title and value from a metrics row.
    var summaryColumns: [(title: String, value: ([String: Any]) -> String)] { get }
}

/// What one iteration reports: the loss it stepped on, the student's logits for the batch (train
/// accuracy), and further loss terms averaged into the epoch's metrics under their keys.
public struct StepResult {
    public var loss: Float
    public var logits: Tensor
    public var terms: [(key: String, value: Float)]

    public init(loss: Float, logits: Tensor, terms: [(key: String, value: Float)] = []) {
        self.loss = loss; self.logits = logits; self.terms = terms
    }
}

extension TrainingStep {
    public var label: String { "" }
    public var checkpointMetadata: [String: String] { [:] }
    public func beginEpoch() {}
    public var progressDetail: String { "" }
    public func epochMetrics() -> [String: Any] { [:] }
    public func epochSummary() -> String { "" }
    public func saveEpochFiles(in run: RunDirectory, metadata: [String: String]) throws {}
    public func resumeState() throws -> (tensors: [(String, Tensor)], metadata: [String: String]) { ([], [:]) }
    public func restore(from contents: SafeTensors.Contents, path: String) throws {}
    public func summaryDetails() -> String { "" }
    public var summaryColumns: [(title: String, value: ([String: Any]) -> String)] { [] }
}

/// Supervised training: cross-entropy of the model's logits, one SGD step.
public final class SupervisedStep: TrainingStep {
    public let network: any FeatureClassifier

    public init(model: any FeatureClassifier) { network = model }

    public var learner: Module { network }
    public var model: any FeatureClassifier { network }
    public var resumePrefix: String { "model" }

    public func run(_ batch: Batch, index: Int, batches: Int, epoch: Int, optimizer: inout OptimizerDriver<SGD>) throws -> StepResult {
        let logits = network(batch.images)
        let loss = crossEntropy(logits, labels: batch.labels)
        let value = loss.item
        guard value.isFinite else { throw TrainingError.nonFiniteLoss(epoch: epoch, batch: index, value: value) }
        optimizer.minimize(loss, of: network)
        return StepResult(loss: value, logits: logits)
    }

    public func summaryHeading(_ training: TrainingConfiguration) -> String { "# \(training.arch) on \(training.data)\n\n" }
}
