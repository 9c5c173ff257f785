import Engine
import Foundation

/// A `ReplicaGroup` of threads in one process, for testing the data-parallel ops without MPI:
/// `ThreadReplicaGroup.run(size:)` runs a body on `size` threads, each with its own member of one
/// group; their collectives meet at a shared barrier and combine in rank order (so sums are the
/// same on every member, as MPI's are).
public final class ThreadReplicaGroup: ReplicaGroup, @unchecked Sendable {
    final class Shared: @unchecked Sendable {
        let size: Int
        let condition = NSCondition()
        var slots: [[UInt8]]
        var arrived = 0, generation = 0
        init(size: Int) { self.size = size; slots = Array(repeating: [], count: size) }

        var result: [[UInt8]] = []

        /// Every member's bytes, once all have contributed. (The next exchange cannot complete, and
        /// so cannot replace `result`, before every member has returned from this one.)
        func exchange(_ bytes: [UInt8], rank: Int) -> [[UInt8]] {
            condition.lock()
            defer { condition.unlock() }
            slots[rank] = bytes
            arrived += 1
            let gen = generation
            if arrived == size {
                arrived = 0
                generation += 1
                result = slots
                condition.broadcast()
            } else {
                while generation == gen { condition.wait() }
            }
            return result
        }
    }

    let shared: Shared
    public let rank: Int
    public var size: Int { shared.size }

    init(shared: Shared, rank: Int) { self.shared = shared; self.rank = rank }

    /// The members of a new group of `size`, each with what `make` built for it (on the calling
    /// thread, one after the other; `make` must not call collectives).
    public static func build<T>(size: Int, _ make: (ThreadReplicaGroup) throws -> T) rethrows -> [(T, ThreadReplicaGroup)] {
        let shared = Shared(size: size)
        return try (0..<size).map { r in let g = ThreadReplicaGroup(shared: shared, rank: r); return (try make(g), g) }
    }

    /// Runs `body(group)` on `size` threads at once and returns their results by rank.
    public static func run<T>(size: Int, _ body: @escaping @Sendable (ThreadReplicaGroup) -> T) -> [T] {
        let shared = Shared(size: size)
        return run(groups: (0..<size).map { ThreadReplicaGroup(shared: shared, rank: $0) }, body)
    }

    /// Runs `body(member)` for every member of one group at once, each on a thread of its own;
    /// returns their results by rank.
    public static func run<T>(groups: [ThreadReplicaGroup], _ body: @escaping @Sendable (ThreadReplicaGroup) -> T) -> [T] {
        let size = groups.count
        let results = UnsafeMutableBufferPointer<T?>.allocate(capacity: size)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        let done = DispatchGroup()
        nonisolated(unsafe) let out = results
        for r in 0..<size {
            done.enter()
            let thread = Thread {
                out[r] = body(groups[r])
                done.leave()
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        done.wait()
        return results.map { $0! }
    }

    private func all<E>(_ values: UnsafeBufferPointer<E>) -> [[E]] {
        let bytes = Array(UnsafeRawBufferPointer(values))
        return shared.exchange(bytes, rank: rank).map { part in part.withUnsafeBytes { Array($0.bindMemory(to: E.self)) } }
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Float>) {
        let parts = all(UnsafeBufferPointer(values))
        for i in values.indices { values[i] = parts.dropFirst().reduce(parts[0][i]) { $0 + $1[i] } }
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        let parts = all(UnsafeBufferPointer(values))
        for i in values.indices { values[i] = parts.dropFirst().reduce(parts[0][i]) { $0 + $1[i] } }
    }

    /// Deferred to its `wait()` (the members wait in the same order), so that a caller that read
    /// or changed the values before then would see it: `test()` says not done until then.
    public func startSum(_ values: UnsafeMutableBufferPointer<Float>) -> any StartedSum { DeferredSum(group: self, values: values) }

    final class DeferredSum: StartedSum {
        let group: ThreadReplicaGroup
        let values: UnsafeMutableBufferPointer<Float>
        var done = false
        init(group: ThreadReplicaGroup, values: UnsafeMutableBufferPointer<Float>) { self.group = group; self.values = values }
        func test() -> Bool { done }
        func wait() {
            guard !done else { return }
            group.sum(values)
            done = true
        }
    }

    public func gather(_ local: UnsafeBufferPointer<Float>, into all: UnsafeMutableBufferPointer<Float>) {
        let parts = self.all(local)
        for (r, part) in parts.enumerated() { for (i, v) in part.enumerated() { all[r * local.count + i] = v } }
    }

    public func gather(bytes: [UInt8]) -> [[UInt8]] { shared.exchange(bytes, rank: rank) }

    public func broadcast(bytes: [UInt8], from root: Int) -> [UInt8] { shared.exchange(bytes, rank: rank)[root] }
}
