import Foundation

/// A one-line progress display on standard error: rewritten in place on a terminal (at most 5 times
/// a second); otherwise (a log file, a pipe) one line at most every `interval` seconds, and always
/// the forced ones (each epoch's summary).
public final class ProgressLine: @unchecked Sendable {
    let interval: Double
    var last = 0.0
    let isTerminal = isatty(2) != 0

    public init(interval: Double = 5) { self.interval = interval }

    public func update(_ text: @autoclosure () -> String, force: Bool = false) {
        let now = Date().timeIntervalSince1970
        guard force || now - last >= (isTerminal ? 0.2 : interval) else { return }
        last = now
        fflush(nil)  // what standard output holds comes first
        FileHandle.standardError.write(((isTerminal ? "\r\u{1B}[K" : "") + text() + (isTerminal ? "" : "\n")).data(using: .utf8)!)
    }

    public func finish() { if isTerminal { FileHandle.standardError.write("\n".data(using: .utf8)!) } }

    /// `1:02:03` / `2:03`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
