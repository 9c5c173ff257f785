import Yams

/// The keys a YAML mapping may hold at one place of a file, and the keys of the mappings nested
/// under some of them (applied to each element when the value is a list). Built from a type's
/// `CodingKeys`, so the file's vocabulary and the decoder's cannot drift apart.
struct AllowedKeys {
    let keys: [String]
    let nested: [String: AllowedKeys]

    init<Key: CodingKey & CaseIterable>(_ codingKeys: Key.Type, nested: [String: AllowedKeys] = [:]) {
        keys = codingKeys.allCases.map(\.stringValue)
        self.nested = nested
    }
}

/// Strict reading of YAML files: unknown or repeated keys are errors with a "did you mean", and
/// every error carries the line and column it refers to.
package enum StrictYAML {
    /// A place in the file: "LINE:COLUMN: ", or " " when the node has none (to follow "PATH:").
    static func position(_ node: Node?) -> String {
        guard let mark = node?.mark else { return " " }
        return "\(mark.line):\(mark.column): "
    }

    /// Throws `ExperimentError.invalid` at the first key of `node` (recursively) that `allowed`
    /// does not list, or that repeats; `path` names the place for the message.
    static func check(_ node: Node, against allowed: AllowedKeys, path: String = "") throws {
        switch node {
        case .sequence(let sequence):
            for (i, element) in sequence.enumerated() { try check(element, against: allowed, path: "\(path)[\(i)]") }
        case .mapping(let mapping):
            var seen: [String: Node] = [:]
            for (keyNode, value) in mapping {
                let key = keyNode.string ?? "\(keyNode)"
                let place = path.isEmpty ? key : "\(path).\(key)"
                if let first = seen[key] {
                    throw ExperimentError.invalid("\(position(keyNode))\(place): the key '\(key)' appears twice (first at \(first.mark.map { "\($0.line):\($0.column)" } ?? "?"))")
                }
                seen[key] = keyNode
                guard allowed.keys.contains(key) else {
                    let hint = suggestion(for: key, among: allowed.keys).map { "; did you mean '\($0)'?" } ?? ""
                    throw ExperimentError.invalid("\(position(keyNode))\(path.isEmpty ? "top level" : path): unknown key '\(key)'\(hint) (known: \(allowed.keys.joined(separator: ", ")))")
                }
                if let inner = allowed.nested[key] { try check(value, against: inner, path: place) }
            }
        case .scalar: break
        }
    }

    /// Nesting deeper than this is refused before the YAML parser (which recurses) sees the text.
    static let maximumDepth = 64

    /// Throws at the first line whose nesting (indentation levels, `- ` entries and open `[`/`{`
    /// outside quotes and comments) exceeds `maximumDepth`: deeply nested YAML would exhaust the
    /// stack of the recursive parser.
    static func checkNesting(_ text: String) throws {
        var indents: [Int] = []
        var flow = 0
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let characters = Array(line)
            let indent = characters.prefix { $0 == " " }.count
            let content = characters.dropFirst(indent)
            if flow == 0, let first = content.first, first != "#" {
                while let last = indents.last, last >= indent { indents.removeLast() }
                indents.append(indent)
            }
            var depth = indents.count + flow
            guard depth <= maximumDepth else {
                throw ExperimentError.invalid("\(number + 1):\(indent + 1): nested more than \(maximumDepth) levels deep")
            }
            var quote: Character? = nil
            var previous: Character = " "
            for (column, c) in characters.enumerated() {
                defer { previous = c }
                if let q = quote {
                    if c == q && !(q == "\"" && previous == "\\") { quote = nil }
                    continue
                }
                switch c {
                case "'", "\"": quote = c
                case "#" where previous == " " || previous == "\t": break
                case "[", "{": flow += 1; depth += 1
                case "]", "}": flow = max(0, flow - 1)
                case "-" where previous == " " && (column + 1 == characters.count || characters[column + 1] == " "): depth += 1
                default: continue
                }
                if c == "#" && (previous == " " || previous == "\t") { break }
                guard depth <= maximumDepth else {
                    throw ExperimentError.invalid("\(number + 1):\(column + 1): nested more than \(maximumDepth) levels deep")
                }
            }
        }
    }

    /// The node a decoding error's coding path leads to (as deep as the path exists in the file).
    static func node(at codingPath: [CodingKey], in root: Node) -> Node {
        var node = root
        for key in codingPath {
            if let index = key.intValue, let sequence = node.sequence, index < sequence.count {
                node = sequence[index]
            } else if let mapping = node.mapping, let entry = mapping.first(where: { $0.key.string == key.stringValue }) {
                node = entry.value
            } else {
                break
            }
        }
        return node
    }

    /// The known key closest to `key` when it is plausibly a misspelling of it.
    package static func suggestion(for key: String, among known: [String]) -> String? {
        let scored = known.map { ($0, editDistance(key, $0)) }.min { $0.1 < $1.1 }
        guard let (best, distance) = scored, distance <= max(2, key.count / 3) else { return nil }
        return best
    }

    /// Levenshtein distance between `a` and `b`.
    package static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let substitution = previous + (a[i - 1] == b[j - 1] ? 0 : 1)
                previous = row[j]
                row[j] = min(substitution, row[j] + 1, row[j - 1] + 1)
            }
        }
        return row[b.count]
    }

    /// A YAML syntax error as "LINE:COLUMN: what is wrong" (to follow "PATH:").
    static func describe(_ error: Error) -> String {
        guard let yaml = error as? YamlError else { return " not valid YAML: \(error)" }
        switch yaml {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            return "\(mark.line):\(mark.column): not valid YAML: \(context.map { "\($0) " } ?? "")\(problem)"
        case let .reader(problem, offset, _, _):
            return " not valid YAML: \(problem)\(offset.map { " at byte \($0)" } ?? "")"
        default:
            return " not valid YAML: \(yaml)"
        }
    }
}
