import CKernels
import Foundation

/// Which build of the CPU-specific kernels (CKernels) runs: the AVX2 one where the CPU has AVX2 and
/// FMA, the portable one elsewhere or when `MMKD_PORTABLE_KERNELS` is set (the test script runs the
/// kernel tests both ways). Both give the same bits.
package enum KernelDispatch {
    /// Whether the AVX2 builds run in this process (decided once, at first use).
    package static var usesAVX2: Bool { mmkd_kernels_use_avx2() != 0 }

    /// Whether `MMKD_PORTABLE_KERNELS` asks for the portable builds.
    package static var portableRequested: Bool {
        guard let v = ProcessInfo.processInfo.environment["MMKD_PORTABLE_KERNELS"] else { return false }
        return !v.isEmpty && v != "0"
    }
}
