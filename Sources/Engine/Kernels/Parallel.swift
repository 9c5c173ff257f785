import COpenMP

/// A pointer that parallel closures may capture. Callers guarantee that concurrent chunks write
/// disjoint ranges.
package struct SendablePointer<T>: @unchecked Sendable {
    package let pointer: UnsafeMutablePointer<T>
    package init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

/// Parallel loops of the Swift kernels. They run on OpenMP's thread pool, the one oneDNN uses, so
/// that a kernel never competes with oneDNN's spinning workers for the two cores.
package enum Parallel {
    /// Threads used by Swift kernels: the OpenMP pool's size (see `EngineThreads`).
    nonisolated(unsafe) package static var workers = Int(omp_get_max_threads())

    private struct Job {
        let body: (Range<Int>) -> Void
        let count: Int
        let parts: Int
    }

    /// Splits `0..<count` into contiguous chunks and runs `body` on each, concurrently when the
    /// work is large enough to pay for the dispatch (`grain` elements per chunk at least).
    @inline(__always)
    package static func chunks(_ count: Int, grain: Int = 32_768, _ body: (Range<Int>) -> Void) {
        _ = EngineThreads.configure
        let parts = min(workers, count / max(grain, 1))
        if parts <= 1 { body(0..<count); return }
        withoutActuallyEscaping(body) { body in
            var job = Job(body: body, count: count, parts: parts)
            withUnsafeMutablePointer(to: &job) { jobPointer in
                GOMP_parallel({ raw in
                    let job = raw!.assumingMemoryBound(to: Job.self).pointee
                    let threads = Int(omp_get_num_threads()), me = Int(omp_get_thread_num())
                    let per = (job.count + job.parts - 1) / job.parts
                    var part = me
                    while part < job.parts {
                        let lo = part * per
                        if lo < job.count { job.body(lo..<min(job.count, lo + per)) }
                        part += threads
                    }
                }, jobPointer, UInt32(parts), 0)
            }
        }
    }
}
