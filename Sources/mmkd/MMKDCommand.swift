import ArgumentParser

@main
struct MMKDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmkd",
        abstract: "Adaptive multi-teacher knowledge distillation (MMKD) and its baselines, in Swift.",
        subcommands: [TrainCommand.self, DistillCommand.self, RunCommand.self, ReportCommand.self, GradCAMCommand.self, EvalCommand.self, ModelsCommand.self, ImportTorchCommand.self, BenchCommand.self])
}
