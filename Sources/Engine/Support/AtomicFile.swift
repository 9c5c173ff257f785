#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Why a file could not be written, in plain words ("the disk is full", "the file system is
/// read-only"); the file that was there before, if any, is unchanged.
public struct FileWriteError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String

    public var description: String { "cannot write \(path): \(reason); the file there before, if any, is unchanged" }
}

/// Writes files so that a reader (or a crash) never sees a half-written one: the data goes to a
/// temporary file `.NAME.PID.tmp` in the same folder, is flushed to the disk, and is then renamed over
/// the destination. A failure (full disk, read-only or missing folder, no permission) removes the
/// temporary file and throws a `FileWriteError`.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(temporaryName(for: url.lastPathComponent)).path
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: url.path, reason: reason(errno)) }
        var failure = writeAll(fd, data)
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        if close(fd) != 0 && failure == 0 { failure = errno }
        if failure == 0 && rename(temporary, url.path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw FileWriteError(path: url.path, reason: reason(failure))
        }
    }

    /// Appends `data` to the file at `url` (created if missing) and flushes it to the disk. On a
    /// failure the file is cut back to its old length, so no partial line stays behind.
    public static func append(_ data: Data, to url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: url.path, reason: reason(errno)) }
        defer { close(fd) }
        let length = lseek(fd, 0, SEEK_END)
        var failure = writeAll(fd, data)
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        if failure != 0 {
            if length >= 0 { _ = ftruncate(fd, length) }
            throw FileWriteError(path: url.path, reason: reason(failure))
        }
    }

    /// Creates the folder at `path` and any missing parents (as `mkdir -p`); a failure names the
    /// folder that could not be made and why.
    public static func makeDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw FileWriteError(path: path, reason: "a file of that name is in the way") }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeDirectory(parent) }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw FileWriteError(path: path, reason: reason(errno)) }
    }

    /// The temporary file name a write of `name` uses in this process.
    public static func temporaryName(for name: String) -> String { ".\(name).\(getpid()).tmp" }

    /// Whether `name` is a temporary file of `write` (left behind only by a process that was killed).
    public static func isTemporary(_ name: String) -> Bool {
        guard name.hasPrefix("."), name.hasSuffix(".tmp") else { return false }
        let parts = name.dropLast(4).split(separator: ".")
        return parts.count >= 2 && parts.last.map { !$0.isEmpty && $0.allSatisfy(\.isNumber) } == true
    }

    /// 0, or the `errno` of the first failed write.
    private static func writeAll(_ fd: Int32, _ data: Data) -> Int32 {
        data.withUnsafeBytes { raw -> Int32 in
            var offset = 0
            while offset < raw.count {
                #if canImport(Glibc)
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                #else
                let n = Darwin.write(fd, raw.baseAddress! + offset, raw.count - offset)
                #endif
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += n
            }
            return 0
        }
    }

    /// A system error number in plain words.
    public static func reason(_ code: Int32) -> String {
        switch code {
        case ENOSPC: return "the disk is full"
        case EDQUOT: return "the disk quota is used up"
        case EROFS: return "the file system is read-only"
        case EACCES, EPERM: return "permission denied"
        case ENOENT: return "its folder does not exist"
        case EFBIG: return "the file would exceed the size this process may write"
        default: return String(cString: strerror(code))
        }
    }
}
