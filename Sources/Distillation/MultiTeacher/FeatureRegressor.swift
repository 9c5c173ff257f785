import Engine
import NN

/// Projects a student feature map to a teacher's channel count (DESIGN.md §3, step 6): the 1×1 form
/// (1×1 conv with bias → BN → ReLU, the paper's default and FitNet's `ConvReg` for equal sizes) or the
/// bottleneck "convs" form (1×1 C_s→C_s/2 → BN → ReLU → 3×3 → BN → ReLU → 1×1 → C_t → BN → ReLU).
public final class FeatureRegressor: Module, UnaryLayer {
    public enum Form: String, Codable, Sendable, CaseIterable {
        case oneByOne = "1x1"
        case convs
    }

    public let layers: Sequential
    public let form: Form

    public init(studentChannels s: Int, teacherChannels t: Int, form: Form) {
        self.form = form
        switch form {
        case .oneByOne:
            layers = Sequential(Conv2d(s, t, kernelSize: 1), BatchNorm2d(t), ReLU())
        case .convs:
            let mid = max(s / 2, 1)
            layers = Sequential(Conv2d(s, mid, kernelSize: 1, bias: false), BatchNorm2d(mid), ReLU(),
                                Conv2d(mid, mid, kernelSize: 3, padding: 1, bias: false), BatchNorm2d(mid), ReLU(),
                                Conv2d(mid, t, kernelSize: 1, bias: false), BatchNorm2d(t), ReLU())
        }
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { layers(x) }
}

extension Tensor {
    /// Brings a student map and a teacher map `[B, C, H, W]` to one spatial size: the larger one is
    /// adaptive-average-pooled to the smaller (DESIGN.md §3, step 6).
    public static func matchingSpatialSize(student: Tensor, teacher: Tensor) -> (student: Tensor, teacher: Tensor) {
        precondition(student.rank == 4 && teacher.rank == 4, "feature maps must be [B, C, H, W], got \(student.shape) and \(teacher.shape)")
        let (sh, sw, th, tw) = (student.shape[2], student.shape[3], teacher.shape[2], teacher.shape[3])
        if sh == th && sw == tw { return (student, teacher) }
        if sh * sw > th * tw { return (student.adaptiveAvgPool2d((th, tw)), teacher) }
        return (student, teacher.adaptiveAvgPool2d((sh, sw)))
    }
}
