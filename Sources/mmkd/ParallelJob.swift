import ArgumentParser
import Distributed
import Engine
import Foundation

/// The command line's view of an `mpirun` job (`ProcessWorld`): the replica group a data-parallel
/// run trains over, and which process speaks and writes. A process started on its own has no group
/// and is the writer.
enum ParallelJob {
    /// The world, when it holds more than one process.
    static var replicas: MPICommunicator? { ProcessWorld.world.flatMap { $0.size > 1 ? $0 : nil } }

    /// Whether this process prints and writes the run's files (rank 0).
    static var isWriter: Bool { ProcessWorld.isWriter }

    /// Prints `text` on the writer only.
    static func say(_ text: String) { if isWriter { print(text) } }

    /// Under a launcher: starts MPI and, unless `MMKD_THREADS` says otherwise, gives each process an
    /// equal part of this machine's cores for its engine threads.
    static func start() {
        guard ProcessWorld.isLaunched else { return }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        setenv("MMKD_THREADS", "\(max(1, cores / ProcessWorld.processesOnThisMachine))", 0)
        _ = ProcessWorld.world
    }
}

extension ParsableCommand {
    /// ", on N processes" in a data-parallel job, else "".
    var processes: String { ParallelJob.replicas.map { ", on \($0.size) processes" } ?? "" }
}
