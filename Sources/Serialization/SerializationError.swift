/// Why a pickle or ZIP container could not be read; names the file.
public enum SerializationError: Error, CustomStringConvertible, Equatable {
    case corrupt(path: String, reason: String)
    case unsupported(path: String, reason: String)

    /// What is wrong, without the path.
    public var reason: String {
        switch self {
        case let .corrupt(_, reason), let .unsupported(_, reason): return reason
        }
    }

    public var description: String {
        switch self {
        case let .corrupt(path, reason): return "\(path): corrupt or truncated: \(reason)"
        case let .unsupported(path, reason): return "\(path): unsupported: \(reason)"
        }
    }
}
