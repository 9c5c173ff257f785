import Dispatch

/// A pointer that parallel closures may capture. Callers guarantee that concurrent chunks write
/// disjoint ranges.
public struct SendablePointer<T>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<T>
    public init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

public enum Parallel {
    /// Worker count for Swift kernels; set once at start-up (see `EngineThreads`).
    nonisolated(unsafe) public static var workers = 2

    /// Splits `0..<count` into contiguous chunks and runs `body` on each, concurrently when the
    /// work is large enough to pay for the dispatch (`grain` elements per chunk at least).
    @inline(__always)
    public static func chunks(_ count: Int, grain: Int = 32_768, _ body: (Range<Int>) -> Void) {
        let parts = min(workers, count / max(grain, 1))
        if parts <= 1 { body(0..<count); return }
        let per = (count + parts - 1) / parts
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: parts) { i in
                let lo = i * per
                body(lo..<min(count, lo + per))
            }
        }
    }
}
