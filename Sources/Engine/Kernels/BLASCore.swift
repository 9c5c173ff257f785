import CKernels
import COpenBLAS
import Foundation

/// Which of OpenBLAS's CPU-specific kernel sets the engine's matrix products run on.
///
/// A `DYNAMIC_ARCH` OpenBLAS (Debian's) picks its kernels from the CPU's *model number* when the
/// library loads. A CPU newer than the OpenBLAS build is unknown to it and gets the Prescott (SSE3)
/// kernels: Debian 12's 0.3.21 does this on Emerald Rapids (family 6, model 207), where it made the
/// Winograd tile products, and so the vgg13:vgg8 distillation step, 2.3× slower than on the
/// AVX-512 kernels the same CPU runs. `select()` fixes that by feature: when OpenBLAS chose a kernel
/// set for a narrower vector extension than the CPU has (CPUID), it reinitialises OpenBLAS's kernel
/// table for SkylakeX (AVX-512) or Haswell (AVX2 + FMA), as `OPENBLAS_CORETYPE` would have.
///
/// Nothing changes when `OPENBLAS_CORETYPE` is set (the user's choice stands), when OpenBLAS's
/// choice already matches the CPU, or when the library is not a `DYNAMIC_ARCH` build (its
/// reinitialisation entry points are looked up at run time and are then absent).
package enum BLASCore {
    /// OpenBLAS's name for the kernel set in use ("SkylakeX", "Haswell", "Prescott", …).
    package static var name: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// The vector level (as `mmkd_cpu_vector_level`) of an OpenBLAS kernel set, by its name; nil
    /// for a name this table does not know (then nothing is changed).
    package static func vectorLevel(ofCore core: String) -> Int? {
        switch core.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen", "excavator", "steamroller": return 2
        case "sandybridge", "bulldozer", "piledriver": return 1
        case "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "nano", "barcelona", "opteron", "opteron_sse3",
             "bobcat", "katmai", "coppermine", "northwood", "banias", "athlon": return 0
        default: return nil
        }
    }

    /// The kernel set to ask for on a CPU of vector level `level` (nil: none better than any).
    package static func core(forVectorLevel level: Int) -> String? {
        switch level {
        case 3: return "SkylakeX"
        case 2: return "Haswell"
        case 1: return "Sandybridge"
        default: return nil
        }
    }

    /// The kernel set OpenBLAS had chosen when `select()` replaced it; nil when it did not.
    nonisolated(unsafe) package private(set) static var replaced: String?

    /// Reselects OpenBLAS's kernels by the CPU's features when its choice is narrower (see the
    /// type's contract). Call before the first matrix product; `EngineThreads.configure` does.
    static func select() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              let chosen = vectorLevel(ofCore: name), let wanted = core(forVectorLevel: Int(mmkd_cpu_vector_level())),
              let wantedLevel = vectorLevel(ofCore: wanted), wantedLevel > chosen,
              let quit = dlsym(nil, "gotoblas_dynamic_quit"), let initialise = dlsym(nil, "gotoblas_dynamic_init") else { return }
        replaced = name
        typealias Entry = @convention(c) () -> Void
        // gotoblas_dynamic_init reads OPENBLAS_CORETYPE; the variable is removed again at once so
        // that no child process (the PyTorch comparator, a test's subprocess) inherits it.
        setenv("OPENBLAS_CORETYPE", wanted, 1)
        unsafeBitCast(quit, to: Entry.self)()
        unsafeBitCast(initialise, to: Entry.self)()
        unsetenv("OPENBLAS_CORETYPE")
    }
}
