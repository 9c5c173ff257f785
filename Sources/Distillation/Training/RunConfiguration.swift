import Foundation

/// What determines a run: its training recipe plus whatever the step needs. Saved as `config.json`
/// and in every resume file; a resume file written with another configuration is refused.
public protocol RunConfiguration: Codable, Equatable, Sendable {
    var training: TrainingConfiguration { get }
}

extension RunConfiguration {
    /// Whether `json` decodes to this configuration.
    func matches(json: String) -> Bool {
        (try? JSONDecoder().decode(Self.self, from: Data(json.utf8))) == self
    }

    /// The settings in which the configuration saved as `json` differs from this one, as
    /// "training.epochs 3 (now 5)", in key order; empty when they agree.
    package func differences(from json: String) -> [String] {
        func flatten(_ value: Any, _ path: String, into out: inout [String: String]) {
            if let object = value as? [String: Any] {
                for (k, v) in object { flatten(v, path.isEmpty ? k : path + "." + k, into: &out) }
            } else if let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys, .fragmentsAllowed]) {
                out[path] = String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
            }
        }
        var saved: [String: String] = [:], current: [String: String] = [:]
        // Read through the decoder first, so that keys of earlier versions compare as today's.
        var savedData = Data(json.utf8)
        if let decoded = try? JSONDecoder().decode(Self.self, from: savedData), let data = try? JSONEncoder().encode(decoded) { savedData = data }
        if let object = try? JSONSerialization.jsonObject(with: savedData) { flatten(object, "", into: &saved) }
        if let data = try? JSONEncoder().encode(self), let object = try? JSONSerialization.jsonObject(with: data) { flatten(object, "", into: &current) }
        return Set(saved.keys).union(current.keys).sorted().compactMap { key in
            let old = saved[key] ?? "unset", new = current[key] ?? "unset"
            return old == new ? nil : "\(key) \(old) (now \(new))"
        }
    }
}

extension TrainingConfiguration: RunConfiguration {
    public var training: TrainingConfiguration { self }
}
