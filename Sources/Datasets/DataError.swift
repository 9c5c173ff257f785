import Serialization

/// Why a data set could not be read. Every case names the file or folder and what was expected.
public enum DataError: Error, CustomStringConvertible, Equatable {
    case missing(path: String, expected: String)
    case corrupt(path: String, reason: String)
    case emptyFolder(path: String, expected: String)
    case mismatch(path: String, reason: String)
    case unsupported(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missing(path, expected): return "\(path): not found (expected \(expected))"
        case let .corrupt(path, reason): return "\(path): corrupt or truncated: \(reason)"
        case let .emptyFolder(path, expected): return "\(path): empty (expected \(expected))"
        case let .mismatch(path, reason): return "\(path): \(reason)"
        case let .unsupported(path, reason): return "\(path): unsupported: \(reason)"
        }
    }
}

extension DataError {
    /// A container reader's error (pickle, ZIP, MAT, zlib) as a data error of the same kind.
    init(_ error: SerializationError) {
        switch error {
        case let .corrupt(path, reason): self = .corrupt(path: path, reason: reason)
        case let .unsupported(path, reason): self = .unsupported(path: path, reason: reason)
        }
    }
}
