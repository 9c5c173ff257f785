import Checkpoints
import Engine
import Foundation
import Models
import NN

/// A trained network that never trains again: evaluation mode (running BN statistics), no
/// gradients, loaded from a safetensors or PyTorch `.pth` checkpoint.
public final class FrozenTeacher {
    public let arch: String
    public let model: any FeatureClassifier
    /// Where the weights came from, for reports.
    public let source: String

    public init(arch: String, model: any FeatureClassifier, source: String) {
        self.arch = arch; self.model = model; self.source = source
        model.eval()
    }

    /// Loads `ARCH` weights for `classes` classes from `path` (`.safetensors`, or `.pth`/`.pt` as
    /// saved by `torch.save`); a checkpoint of another architecture or class count names the first
    /// mismatching key.
    public static func load(arch: String, checkpoint path: String, classes: Int) throws -> FrozenTeacher {
        let model = try ModelZoo.make(arch, classes: classes)
        do {
            try ModelCheckpoint.load(URL(fileURLWithPath: path), into: model)
        } catch CheckpointError.architectureMismatch(_, let reason) {
            throw CheckpointError.architectureMismatch(path: path, reason: "\(arch) with \(classes) classes: \(reason)")
        }
        return FrozenTeacher(arch: arch, model: model, source: path)
    }

    /// Logits and penultimate map of a batch, and the other maps `keeping` asks for (the rest are
    /// freed as soon as the forward pass no longer needs them).
    public func outputs(_ images: Tensor, keeping maps: TeacherOutputs.Maps = .all) -> TeacherOutputs {
        withoutGrad {
            let (features, logits) = model.features(images)
            return TeacherOutputs(logits: logits, penultimate: features[features.count - 2], hint: maps.contains(.hint) ? features[2] : nil,
                                  stages: maps.contains(.stages) ? Array(features[1..<(features.count - 1)]) : [])
        }
    }
}
