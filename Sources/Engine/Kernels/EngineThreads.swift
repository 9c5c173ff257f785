import COpenBLAS
import COpenMP
import Foundation

/// The engine's thread pools, set once and deliberately. On a small machine two pools that spin
/// while waiting steal each other's cores, so:
/// - oneDNN and the Swift kernels share OpenMP's pool (`Parallel` runs on it);
/// - OpenBLAS runs on one thread by default: the engine's matrix products are small (classifier
///   heads, meta-weight networks) and its own pthread pool would spin against OpenMP's.
///
/// - OpenBLAS's kernels are chosen by the CPU's vector extensions (`BLASCore`).
///
/// `MMKD_THREADS` sets the OpenMP pool size (default: OpenMP's own, the core count) and
/// `MMKD_BLAS_THREADS` OpenBLAS's (default 1).
public enum EngineThreads {
    /// Applies the settings on first use; later calls do nothing.
    public static let configure: Void = {
        let env = ProcessInfo.processInfo.environment
        if let n = env["MMKD_THREADS"].flatMap(Int.init), n > 0 { omp_set_num_threads(Int32(n)) }
        Parallel.workers = Int(omp_get_max_threads())
        BLASCore.select()
        openblas_set_num_threads(Int32(env["MMKD_BLAS_THREADS"].flatMap(Int.init) ?? 1))
    }()

}
