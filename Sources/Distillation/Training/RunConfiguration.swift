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
}

extension TrainingConfiguration: RunConfiguration {
    public var training: TrainingConfiguration { self }
}
