/// A teacher of a distillation run: an architecture and its checkpoint.
public struct TeacherSpec: Codable, Sendable, Equatable {
    public var arch: String
    public var checkpoint: String
    public init(arch: String, checkpoint: String) { self.arch = arch; self.checkpoint = checkpoint }

    /// Parses `ARCH=CHECKPOINT`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw DistillationError.badTeacher(text)
        }
        self.init(arch: parts[0], checkpoint: parts[1])
    }
}

/// Everything that determines a distillation run: the student's training recipe (as
/// `TrainingConfiguration`) plus the teachers and the method's hyper-parameters.
public struct DistillationConfiguration: RunConfiguration {
    public var training: TrainingConfiguration
    public var teachers: [TeacherSpec]
    public var hyper: DistillationHyperparameters

    public init(student: String, data: String, teachers: [TeacherSpec], method: any DistillationMethod) {
        training = TrainingConfiguration(arch: student, data: data)
        self.teachers = teachers
        hyper = DistillationHyperparameters(method: method)
    }
}

/// Why a distillation run cannot start or continue.
public enum DistillationError: Error, CustomStringConvertible {
    case badTeacher(String)
    case teacherCount(String)
    case featureShape(String)
    case unknownMethod(String, known: [String])

    public var description: String {
        switch self {
        case let .badTeacher(t): return "--teacher '\(t)': expected ARCH=CHECKPOINT (e.g. resnet32x4=runs/t1/best.safetensors)"
        case let .teacherCount(problem): return "--method \(problem)"
        case let .featureShape(s): return s
        case let .unknownMethod(name, known): return "unknown method '\(name)'; known: \(known.joined(separator: ", "))"
        }
    }
}
