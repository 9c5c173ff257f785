import CMPI
import Engine
import Foundation

/// The processes `mpirun` (or `srun --mpi=pmix`) started together. A process started on its own is a
/// world of one: MPI is then never initialised and everything behaves as in a single process.
public enum ProcessWorld {
    /// The variables Open MPI's launcher and PMIx set in every process it starts.
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"]

    /// Whether a launcher started this process as part of a parallel job.
    public static var isLaunched: Bool {
        let env = ProcessInfo.processInfo.environment
        return launcherVariables.contains { env[$0] != nil }
    }

    nonisolated(unsafe) private static var started: MPICommunicator?

    /// The world (all the job's processes), initialising MPI on first use; nil for a process not
    /// started by a launcher. When the world has more than one process, a process that exits
    /// without `finish()` (an error) aborts the whole job instead of leaving the others waiting.
    public static var world: MPICommunicator? {
        if let started { return started }
        guard isLaunched else { return nil }
        var provided: Int32 = 0
        let status = mmkd_mpi_init(&provided)
        guard status == 0 else {
            FileHandle.standardError.write(Data("error: MPI_Init_thread failed (code \(status)); is Open MPI installed (libopenmpi-dev, openmpi-bin)?\n".utf8))
            exit(1)
        }
        let world = MPICommunicator(handle: mmkd_mpi_comm_world())
        started = world
        if world.size > 1 { atexit { ProcessWorld.abortUnlessFinished() } }
        return world
    }

    /// Whether this process writes the run's files (rank 0 of the world, or a process on its own).
    public static var isWriter: Bool { (world?.rank ?? 0) == 0 }

    /// How many of the job's processes share this machine (Open MPI's local size), 1 on its own.
    public static var processesOnThisMachine: Int {
        let env = ProcessInfo.processInfo.environment
        return max(1, env["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? env["PMIX_LOCAL_SIZE"].flatMap(Int.init) ?? 1)
    }

    /// Ends MPI (after the last collective call); nothing for a process on its own.
    public static func finish() {
        guard started != nil else { return }
        _ = mmkd_mpi_finalize()
        finished = true
    }

    nonisolated(unsafe) private static var finished = false

    private static func abortUnlessFinished() {
        guard let started, !finished else { return }
        fflush(nil)
        _ = mmkd_mpi_abort(started.handle, 1)
    }
}
