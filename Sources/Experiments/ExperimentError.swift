/// Why an experiment cannot be read, run or reported.
public enum ExperimentError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    case missingRun(String)

    public var description: String {
        switch self {
        case let .invalid(why): return why
        case let .missingRun(why): return why
        }
    }

    /// A decoding error as a path into the file and what was expected.
    static func describe(_ error: DecodingError) -> String {
        let path = describe(path:)
        switch error {
        case let .keyNotFound(key, c): return "\(path(c)): missing key '\(key.stringValue)'"
        case let .typeMismatch(type, c): return "\(path(c)): expected \(type) (\(c.debugDescription))"
        case let .valueNotFound(type, c): return "\(path(c)): expected a value of type \(type)"
        case let .dataCorrupted(c): return "\(path(c)): \(c.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    /// A decoding error's place as `budget.epochs` or `methods[2].beta` ("top level" at the root).
    static func describe(path context: DecodingError.Context) -> String {
        let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return keys.isEmpty ? "top level" : String(keys.drop { $0 == "." })
    }
}
