import CMPI
import Engine
import Foundation

/// A group of MPI processes (the world, or a part of it made by `split`) as the engine's
/// `ReplicaGroup`: sums by `MPI_Allreduce`, concatenations by `MPI_Allgather`. It also counts what
/// it sends and how long its calls take (`statistics`), which `mmkd bench scale` reports. Only the
/// training thread calls it (MPI_THREAD_SERIALIZED).
public final class MPICommunicator: ReplicaGroup, @unchecked Sendable {
    let handle: OpaquePointer
    public let rank: Int
    public let size: Int
    /// What this process's calls moved and waited, since the group was made.
    public private(set) var statistics = Statistics()

    /// Calls, the bytes this process contributed to them, and the seconds spent inside them.
    public struct Statistics: Sendable {
        public var calls = 0
        public var bytes = 0
        public var seconds = 0.0
    }

    init(handle: OpaquePointer) {
        self.handle = handle
        rank = Int(mmkd_mpi_comm_rank(handle))
        size = Int(mmkd_mpi_comm_size(handle))
    }

    public var traffic: (bytes: Int, seconds: Double) { (statistics.bytes, statistics.seconds) }

    /// Runs one MPI call, timing it and counting `bytes`; a failing call ends the whole job (MPI's
    /// default error handler aborts before returning, so this is a last resort).
    private func call(bytes: Int, counted: Bool = true, _ body: () -> Int32) {
        let start = mmkd_mpi_wtime()
        let status = body()
        if counted { statistics.calls += 1 }
        statistics.bytes += bytes
        statistics.seconds += mmkd_mpi_wtime() - start
        if status != 0 {
            FileHandle.standardError.write(Data("error: MPI call failed with code \(status) on rank \(rank) of \(size)\n".utf8))
            _ = mmkd_mpi_abort(handle, 1)
        }
    }

    /// Counts beyond Int32 are sent in parts (MPI counts are C ints).
    private static let chunk = Int(Int32.max / 8)

    public func sum(_ values: UnsafeMutableBufferPointer<Float>) {
        guard let base = values.baseAddress else { return }
        for start in stride(from: 0, to: values.count, by: Self.chunk) {
            let n = min(Self.chunk, values.count - start)
            call(bytes: n * 4) { mmkd_mpi_sum_float(base + start, Int32(n), handle) }
        }
    }

    public func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        guard let base = values.baseAddress else { return }
        for start in stride(from: 0, to: values.count, by: Self.chunk) {
            let n = min(Self.chunk, values.count - start)
            call(bytes: n * 8) { mmkd_mpi_sum_double(base + start, Int32(n), handle) }
        }
    }

    /// MPI_Iallreduce; the time in it and in the request's tests and wait counts as time in MPI.
    public func startSum(_ values: UnsafeMutableBufferPointer<Float>) -> any StartedSum {
        precondition(values.count <= Int(Int32.max), "startSum: \(values.count) values is more than one MPI call takes")
        let started = MPIStartedSum(communicator: self)
        guard let base = values.baseAddress, values.count > 0 else { return started }
        call(bytes: values.count * 4) { mmkd_mpi_start_sum_float(base, Int32(values.count), handle, &started.request) }
        return started
    }

    /// A started MPI sum's request.
    final class MPIStartedSum: StartedSum {
        unowned let communicator: MPICommunicator
        var request: MPI_Request? = mmkd_mpi_request_null()
        var done = false
        init(communicator: MPICommunicator) { self.communicator = communicator }

        func test() -> Bool {
            guard !done else { return true }
            var flag: Int32 = 0
            communicator.call(bytes: 0, counted: false) { mmkd_mpi_test(&request, &flag) }
            done = flag != 0
            return done
        }

        func wait() {
            guard !done else { return }
            communicator.call(bytes: 0, counted: false) { mmkd_mpi_wait(&request) }
            done = true
        }

        deinit { precondition(done || request == mmkd_mpi_request_null(), "a started MPI sum was dropped before it completed") }
    }

    public func gather(_ local: UnsafeBufferPointer<Float>, into all: UnsafeMutableBufferPointer<Float>) {
        precondition(all.count == local.count * size, "gather: \(all.count) values for \(size) × \(local.count)")
        precondition(local.count <= Self.chunk, "gather: \(local.count) values is more than one MPI call takes")
        guard local.count > 0 else { return }
        call(bytes: local.count * 4) { mmkd_mpi_gather_float(local.baseAddress!, Int32(local.count), all.baseAddress!, handle) }
    }

    public func gather(bytes: [UInt8]) -> [[UInt8]] {
        // The counts first (fixed size), then every part padded to the longest.
        var counts = [Int64](repeating: 0, count: size)
        var own = Int64(bytes.count)
        counts.withUnsafeMutableBytes { all in
            withUnsafeBytes(of: &own) { mine in call(bytes: 8) { mmkd_mpi_gather_bytes(mine.baseAddress!, 8, all.baseAddress!, handle) } }
        }
        let longest = Int(counts.max() ?? 0)
        guard longest > 0 else { return Array(repeating: [], count: size) }
        precondition(longest <= Self.chunk, "gather: \(longest) bytes is more than one MPI call takes")
        var padded = bytes + [UInt8](repeating: 0, count: longest - bytes.count)
        var all = [UInt8](repeating: 0, count: longest * size)
        padded.withUnsafeMutableBytes { mine in
            all.withUnsafeMutableBytes { out in call(bytes: longest) { mmkd_mpi_gather_bytes(mine.baseAddress!, Int32(longest), out.baseAddress!, handle) } }
        }
        return (0..<size).map { r in Array(all[(r * longest) ..< (r * longest + Int(counts[r]))]) }
    }

    public func broadcast(bytes: [UInt8], from root: Int) -> [UInt8] {
        var count = Int64(bytes.count)
        withUnsafeMutableBytes(of: &count) { p in call(bytes: 8) { mmkd_mpi_broadcast_bytes(p.baseAddress!, 8, Int32(root), handle) } }
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        guard count > 0 else { return out }
        precondition(Int(count) <= Self.chunk, "broadcast: \(count) bytes is more than one MPI call takes")
        out.withUnsafeMutableBytes { p in call(bytes: Int(count)) { mmkd_mpi_broadcast_bytes(p.baseAddress!, Int32(count), Int32(root), handle) } }
        return out
    }

    /// The processes that passed the same `color`, as a group of their own, ranked by `key` (then
    /// by rank here). Collective over this group.
    public func split(color: Int, key: Int) -> MPICommunicator {
        MPICommunicator(handle: mmkd_mpi_comm_split(handle, Int32(color), Int32(key)))
    }
}
