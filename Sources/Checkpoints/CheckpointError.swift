/// Why a checkpoint could not be read or used; each case names the file and what was expected.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case missing(path: String)
    case corrupt(path: String, reason: String)
    case unsupported(path: String, reason: String)
    case architectureMismatch(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missing(path): return "\(path): checkpoint not found"
        case let .corrupt(path, reason): return "\(path): not a valid checkpoint: \(reason)"
        case let .unsupported(path, reason): return "\(path): unsupported: \(reason)"
        case let .architectureMismatch(path, reason): return "\(path): does not fit the architecture: \(reason)"
        }
    }
}
