import Engine
import Foundation

/// A run's folder: `config.json`, `metrics.jsonl` (one JSON object per epoch), `steps.jsonl` (one
/// per training step: epoch, batch, loss and its terms), `summary.md`,
/// checkpoints (`best.safetensors`, `last.safetensors`) and `resume.safetensors`. Files are replaced
/// atomically; metrics lines are appended whole.
public struct RunDirectory: Sendable {
    public let url: URL
    /// The hold on the folder when opened `exclusive` (kept while any copy of this value lives).
    public let lock: RunLock?

    /// Opens (creating it if needed) the run folder at `path`; `exclusive` (every writer: train,
    /// distill, each cell of an experiment) also takes its `RunLock`, so that one process at a time
    /// writes a run, and then removes the temporary files a killed writer left behind.
    public init(_ path: String, exclusive: Bool = false) throws {
        url = URL(fileURLWithPath: path)
        do { try AtomicFile.makeDirectory(url.path) } catch let e as FileWriteError {
            throw TrainingError.runDirectory(path: path, reason: "cannot create \(e.path): \(e.reason)")
        }
        lock = exclusive ? try RunLock(url) : nil
        if exclusive { removeOrphanedTemporaryFiles() }
    }

    /// Removes `.NAME.PID.tmp` files here and in subfolders (an experiment's cells and figures):
    /// with the lock held, no other process is writing them.
    func removeOrphanedTemporaryFiles() {
        let names = FileManager.default.enumerator(atPath: url.path)?.compactMap { $0 as? String } ?? []
        for name in names where AtomicFile.isTemporary((name as NSString).lastPathComponent) { try? FileManager.default.removeItem(at: file(name)) }
    }

    /// Why `name` cannot name a run folder under a runs directory, or nil when it can: one path
    /// component, not empty, not `.` or `..`, without `/` or a NUL byte (so a run never lands outside
    /// its runs directory).
    public static func problem(withName name: String) -> String? {
        if name.isEmpty { return "it is empty" }
        if name == "." || name == ".." { return "'\(name)' is not a folder of its own" }
        if name.contains("/") || name.contains("\0") { return "'\(name)' has a '/' (a run is one folder under --runs-dir)" }
        return nil
    }

    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    public func writeJSON<T: Encodable>(_ value: T, to name: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(value), to: file(name))
    }

    public func writeText(_ text: String, to name: String) throws {
        try AtomicFile.write(Data(text.utf8), to: file(name))
    }

    /// Appends one JSON line to `metrics.jsonl`.
    public func appendMetrics(_ entry: [String: Any]) throws { try appendLines([entry], to: "metrics.jsonl") }

    /// Appends JSON lines to the file `name` (one object per line), in one write.
    public func appendLines(_ entries: [[String: Any]], to name: String) throws {
        try AtomicFile.append(try Self.jsonLines(entries), to: file(name))
    }

    /// Rewrites the run's TensorBoard event file from `metrics.jsonl` (see `TensorBoardLog`).
    public func writeTensorBoardLog() throws {
        let config = try? FileManager.default.attributesOfItem(atPath: file("config.json").path)
        let start = (config?[.modificationDate] as? Date ?? Date()).timeIntervalSince1970
        try AtomicFile.write(try TensorBoardLog.events(metrics(), start: start), to: file(TensorBoardLog.fileName))
    }

    /// The metrics lines written so far (for resuming: lines of epochs not yet finished are dropped).
    public func metrics() -> [[String: Any]] { lines(of: "metrics.jsonl") }

    /// The JSON lines of the file `name` (`metrics.jsonl`, `steps.jsonl`), or none.
    public func lines(of name: String) -> [[String: Any]] {
        guard let text = try? String(contentsOf: file(name), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// Drops the lines of `metrics.jsonl` and `steps.jsonl` of epochs after `epoch` (a resumed run's
    /// unfinished ones).
    public func keepMetrics(throughEpoch epoch: Int) throws {
        for name in ["metrics.jsonl", "steps.jsonl"] where FileManager.default.fileExists(atPath: file(name).path) {
            try replaceLines(of: name, with: lines(of: name).filter { ($0["epoch"] as? Int).map { $0 <= epoch } ?? false })
        }
    }

    /// Rewrites `metrics.jsonl` with the given lines (atomically).
    public func replaceMetrics(_ entries: [[String: Any]]) throws { try replaceLines(of: "metrics.jsonl", with: entries) }

    /// Rewrites the file `name` with the given JSON lines (atomically).
    public func replaceLines(of name: String, with entries: [[String: Any]]) throws {
        try AtomicFile.write(try Self.jsonLines(entries), to: file(name))
    }

    /// One JSON object per line, keys sorted.
    static func jsonLines(_ entries: [[String: Any]]) throws -> Data {
        var data = Data()
        for e in entries { data.append(try JSONSerialization.data(withJSONObject: e, options: [.sortedKeys])); data.append(0x0A) }
        return data
    }
}
