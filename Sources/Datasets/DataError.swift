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
