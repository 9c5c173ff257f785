/// Why a pickle or ZIP container could not be read; names the file.
public enum SerializationError: Error, CustomStringConvertible, Equatable {
    case corrupt(path: String, reason: String)
    case unsupported(path: String, reason: String)

    public var description: String {
        switch self {
        case let .corrupt(path, reason): return "\(path): corrupt or truncated: \(reason)"
        case let .unsupported(path, reason): return "\(path): unsupported: \(reason)"
        }
    }
}
