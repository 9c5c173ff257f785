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
    /// (and progress lines flush it too), so that in a file or a pipe both streams keep their order.
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
            exit(withError: error)
        }
    }
}
