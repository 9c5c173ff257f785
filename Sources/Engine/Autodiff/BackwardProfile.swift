import Foundation

/// Where backward passes spend their time: wall time per backward rule (by op name; `+G` when the
/// pass was recorded for a higher order), each rule's *self* time — a composite derivative's
/// nested pass is counted under the rules it runs, not twice. Off unless `MMKD_PROFILE_BACKWARD=1`
/// (or `isEnabled` set), when `mmkd` prints `report()` at exit; a disabled profile costs one branch
/// per rule. Safe from several threads (each has its own stack of open rules).
public final class BackwardProfile: @unchecked Sendable {
    public static let shared = BackwardProfile()
    nonisolated(unsafe) public static var isEnabled = ProcessInfo.processInfo.environment["MMKD_PROFILE_BACKWARD"] == "1"

    /// Seconds of self time and calls per rule.
    public struct Entry: Sendable { public var seconds: Double; public var calls: Int }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    /// Per thread: for each open rule, the time its nested rules took so far (nanoseconds).
    private let open = PerThread<[UInt64]> { [] }

    /// Runs `body` as the backward rule `name`, adding its self time to the profile.
    func measure<T>(_ name: String, _ body: () -> T) -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        open.value.append(0)
        let result = body()
        let total = DispatchTime.now().uptimeNanoseconds - start
        let nested = open.value.removeLast()
        if !open.value.isEmpty { open.value[open.value.count - 1] += total }
        lock.lock()
        entries[name, default: Entry(seconds: 0, calls: 0)].seconds += Double(total - min(nested, total)) / 1e9
        entries[name, default: Entry(seconds: 0, calls: 0)].calls += 1
        lock.unlock()
        return result
    }

    /// The rules measured so far, slowest first.
    public var snapshot: [(rule: String, entry: Entry)] {
        lock.lock(); defer { lock.unlock() }
        return entries.map { ($0.key, $0.value) }.sorted { $0.entry.seconds > $1.entry.seconds }
    }

    public func reset() { lock.lock(); entries = [:]; lock.unlock() }

    /// A table of the `limit` slowest rules: self seconds, share, calls, name.
    public func report(limit: Int = 30) -> String {
        let rows = snapshot
        let total = rows.reduce(0) { $0 + $1.entry.seconds }
        var text = String(format: "backward passes: %.3f s in %d rules (self time; +G: recorded for a higher order)\n", total, rows.count)
        for (rule, e) in rows.prefix(limit) {
            text += String(format: "%9.3f s %5.1f%% %7d  %@\n", e.seconds, total > 0 ? 100 * e.seconds / total : 0, e.calls, rule)
        }
        return text
    }
}
