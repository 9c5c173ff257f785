import ArgumentParser
import Distillation
import Foundation
import Models

extension HypergradientMode: ExpressibleByArgument {}
extension FeatureRegressor.Form: ExpressibleByArgument {}

/// `mmkd distill`: distils frozen teachers into a student with MMKD or a baseline.
struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distil one or more frozen teachers into a student (MMKD or a baseline).",
        discussion: """
        Methods (DESIGN.md §3–4):
        \(DistillationMethods.help)

        Teachers (--teacher ARCH=CHECKPOINT, repeatable) load from .safetensors or PyTorch .pth files and run frozen in \
        evaluation mode; their test accuracy and the ensemble's are measured first. The loss is γ·CE + α·L_div + β·L_feat. \
        The run directory receives config.json, teachers.json, metrics.jsonl (with the teacher weights per epoch), \
        summary.md, the student as best/last.safetensors, regressors and meta networks in distiller.safetensors, and \
        resume.safetensors (--resume continues bit-identically).
        """)

    @Option(help: "Student architecture (\(ModelZoo.allNames.joined(separator: ", "))).") var student: String
    @Option(name: .customLong("teacher"), help: "A teacher as ARCH=CHECKPOINT (repeat for several).") var teachers: [String] = []
    @OptionGroup var recipe: RecipeOptions
    @Option(parsing: .unconditional, help: "Temperature τ.") var tau: Float = 4
    @Option(parsing: .unconditional, help: "Weight γ of cross-entropy.") var gamma: Float = 1
    @Option(parsing: .unconditional, help: "Weight α of the logit term (default: the method's, 0 for fitnet/at/srrl, else 1).") var alpha: Float?
    @Option(parsing: .unconditional, help: "Weight β of the feature term (default: the method's, 100 for mmkd/fitnet-mkd/aekd-feature, 50 for camkd).") var beta: Float?
    @Option(help: "Feature regressor: 1x1 or convs (1×1/3×3/1×1 bottleneck); default the method's.") var regressor: FeatureRegressor.Form?
    @Option(help: "Behaviour: paper (default) or official (reproduce the official MMKD code's quirks, DESIGN.md §3).") var compat: String = "paper"
    @Option(parsing: .unconditional, help: "MMKD: Adam learning rate of the meta-weight networks.") var metaLr: Float = 1e-3
    @Option(parsing: .unconditional, help: "MMKD: Adam weight decay of the meta-weight networks.") var metaWeightDecay: Float = 1e-4
    @Option(parsing: .unconditional, help: "MMKD: a meta step every this many iterations (and at each epoch's last).") var metaFreq: Int = 5
    @Option(parsing: .unconditional, help: "MMKD: hard-sample buffer capacity.") var bufferSize: Int = 256
    @Flag(help: "MMKD: meta steps on the current batch instead of hard-buffer samples.") var noBuffer = false
    @Option(help: "MMKD: exact (second order, default) or first-order (finite-difference mixed term, no Hessian terms).") var hypergradient: HypergradientMode = .exact
    @Flag(help: "MMKD, exact hypergradient: keep the look-ahead graphs for the replay (faster, about 3× the meta step's memory).") var keepReplayGraphs = false
    @Flag(help: "MMKD ablation: uniform logit weights instead of the learned ones.") var noLogitWeights = false
    @Flag(help: "MMKD ablation: uniform feature weights instead of the learned ones.") var noFeatureWeights = false
    @Flag(help: "Ablation: no feature term (β = 0).") var noFeatureLoss = false
    @Option(parsing: .unconditional, help: "AEKD: the one-class SVM's C.") var svmC: Double = 0.6

    @Option(name: .customLong("method"), help: "Method: \(DistillationMethods.names.joined(separator: ", ")) (see below).") var methodName: String

    /// The method `--method` names.
    var method: any DistillationMethod {
        get throws {
            guard let m = DistillationMethods.named(methodName) else {
                throw ValidationError("--method: unknown method '\(methodName)'; known: \(DistillationMethods.names.joined(separator: ", "))")
            }
            return m
        }
    }

    func validate() throws {
        let method = try self.method
        guard ModelZoo.allNames.contains(student) else {
            throw ValidationError("--student: unknown architecture '\(student)'; known: \(ModelZoo.allNames.joined(separator: ", "))")
        }
        guard !teachers.isEmpty else { throw ValidationError("give at least one --teacher ARCH=CHECKPOINT") }
        for t in teachers {
            let spec = try TeacherSpec(parsing: t)
            guard ModelZoo.allNames.contains(spec.arch) else {
                throw ValidationError("--teacher \(t): unknown architecture '\(spec.arch)'")
            }
            guard FileManager.default.fileExists(atPath: spec.checkpoint) else { throw ValidationError("--teacher \(t): no file at \(spec.checkpoint)") }
        }
        if let problem = method.teacherCountProblem(teachers.count) { throw ValidationError("--method \(problem)") }
        guard ["paper", "official"].contains(compat) else { throw ValidationError("--compat must be paper or official, got '\(compat)'") }
        guard tau > 0 && tau.isFinite else { throw ValidationError("--tau must be a positive number, got \(tau)") }
        for (name, v) in [("gamma", gamma), ("alpha", alpha ?? 0), ("beta", beta ?? 0), ("meta-lr", metaLr), ("meta-weight-decay", metaWeightDecay)]
            where !(v >= 0 && v.isFinite) {
            throw ValidationError("--\(name) must be a number ≥ 0, got \(v)")
        }
        guard metaFreq > 0 else { throw ValidationError("--meta-freq must be positive, got \(metaFreq)") }
        guard bufferSize >= recipe.batchSize else { throw ValidationError("--buffer-size (\(bufferSize)) must hold at least one batch (\(recipe.batchSize))") }
        guard svmC > 0 && svmC.isFinite else { throw ValidationError("--svm-c must be positive, got \(svmC)") }
    }

    func configuration() throws -> DistillationConfiguration {
        let method = try self.method
        var config = DistillationConfiguration(student: student, data: recipe.data, teachers: try teachers.map(TeacherSpec.init(parsing:)), method: method)
        config.training = try recipe.configuration(arch: student)
        var h = config.hyper
        h.temperature = tau; h.gamma = gamma; h.alpha = alpha ?? method.defaultAlpha
        h.beta = noFeatureLoss ? 0 : (beta ?? method.defaultBeta)
        h.regressor = regressor ?? method.defaultRegressor
        h.compatOfficial = compat == "official"
        h.metaLearningRate = metaLr; h.metaWeightDecay = metaWeightDecay; h.metaFrequency = metaFreq
        h.bufferSize = bufferSize; h.useBuffer = !noBuffer; h.hypergradient = hypergradient; h.keepReplayGraphs = keepReplayGraphs
        h.learnLogitWeights = !noLogitWeights; h.learnFeatureWeights = !noFeatureWeights; h.svmC = svmC
        config.hyper = h
        return config
    }

    func run() throws {
        let config = try configuration()
        let method = config.hyper.method
        let run = try RunDirectory(recipe.runsDir + "/" + (recipe.name ?? "\(method.name)-\(student)-seed\(recipe.seed)"), exclusive: ParallelJob.isWriter)
        let replicas = ParallelJob.replicas
        let trainer = try Trainer.distillation(config, run: run, resume: recipe.resume, replicas: replicas)
        ParallelJob.say("distilling \(config.teachers.map(\.arch).joined(separator: " + ")) → \(student) (\(trainer.model.parameterCount) parameters) with \(method.name) on \(recipe.data): \(trainer.trainLoader.dataset.count) training, \(trainer.testLoader.dataset.count) test images\(processes) → \(run.url.path)")
        let teachers = try trainer.distillation!.evaluateTeachers(run: run, testLoader: trainer.testLoader, replicas: replicas)
        for (spec, r) in zip(config.teachers, teachers.teachers) { ParallelJob.say(String(format: "  teacher %@ (%@): test top-1 %.2f%%", spec.arch, spec.checkpoint, r.top1)) }
        ParallelJob.say(String(format: "  ensemble of %d: test top-1 %.2f%%", teachers.teachers.count, teachers.ensemble.top1))
        for note in method.notes(config.hyper, batchSize: recipe.batchSize) { ParallelJob.say("note: \(note)") }
        if trainer.nextEpoch > 0 { ParallelJob.say("resuming after epoch \(trainer.nextEpoch)") }
        try trainer.train()
        ParallelJob.say("best test top-1 \(String(format: "%.2f", trainer.bestTop1))%; summary: \(run.file("summary.md").path)")
    }
}
