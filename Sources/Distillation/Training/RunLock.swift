#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Engine
import Foundation

/// An exclusive hold on a run directory for as long as this object lives: `flock` on the folder's
/// `.lock` file, which then holds the holder's process id. A second process (or a second hold in
/// this one) on the same run fails at once, naming the holder, instead of interleaving its metrics
/// and checkpoints with the first's. The operating system drops the hold when the process ends,
/// however it ends, so a killed run never leaves its folder locked.
public final class RunLock: @unchecked Sendable {
    private let descriptor: Int32

    public init(_ directory: URL) throws {
        let path = directory.appendingPathComponent(".lock").path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TrainingError.runDirectory(path: directory.path, reason: "cannot open \(path): \(AtomicFile.reason(errno))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buffer, 31)
            close(fd)
            let holder = String(decoding: buffer.prefix(Swift.max(n, 0)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw TrainingError.runInUse(path: directory.path, holder: holder.isEmpty ? "another process" : "process \(holder)")
        }
        _ = ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        descriptor = fd
    }

    deinit { close(descriptor) }
}
