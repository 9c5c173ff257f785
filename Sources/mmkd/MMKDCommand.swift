import ArgumentParser
import Distributed
import Engine
import Foundation

@main
struct MMKDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmkd",
        abstract: "Adaptive multi-teacher knowledge distillation (MMKD) and its baselines, in Swift.",
        subcommands: [TrainCommand.self, DistillCommand.self, RunCommand.self, ReportCommand.self, GradCAMCommand.self, EvalCommand.self, ModelsCommand.self, ImportTorchCommand.self, ExportCommand.self, BenchCommand.self])

    /// As ArgumentParser's, but what standard output holds is flushed before an error is printed
    /// (and progress lines flush it too), so that in a file or a pipe both streams keep their order,
    /// and the message is printed whole (`exitWhole`).
    static func main() {
        do {
            ParallelJob.start()
            var command = try parseAsRoot()
            try command.run()
            if BackwardProfile.isEnabled { FileHandle.standardError.write(Data(BackwardProfile.shared.report().utf8)) }
            if MemoryProfile.isEnabled { FileHandle.standardError.write(Data(MemoryProfile.report().utf8)) }
            fflush(nil)
            ProcessWorld.finish()
        } catch {
            fflush(nil)
            exitWhole(withError: error)
        }
    }

    /// ArgumentParser's `exit(withError:)` in one `write` per stream: the processes of a
    /// data-parallel job that fail alike share one stream, and ArgumentParser's own printing let
    /// their messages interleave character by character. Help and other clean exits go to standard
    /// output, errors to standard error.
    static func exitWhole(withError error: Error) -> Never {
        let code = exitCode(for: error)
        let message = fullMessage(for: error)
        if !message.isEmpty {
            let bytes = Array((message.hasSuffix("\n") ? message : message + "\n").utf8)
            let fd: Int32 = code == .success ? 1 : 2
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                written += n
            }
        }
        Foundation.exit(code.rawValue)
    }
}
