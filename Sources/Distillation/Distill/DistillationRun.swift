import Checkpoints
import Datasets
import Engine
import Foundation
import Models
import NN

extension Trainer {
    /// Distils `config.teachers` (frozen, loaded from their checkpoints) into a student with the
    /// configured method. The run directory receives `config.json`, `teachers.json` (each teacher's
    /// and the ensemble's test accuracy, see `DistillationStep.evaluateTeachers`), `metrics.jsonl`
    /// (with per-teacher weight statistics), `summary.md`, the student as `best`/`last.safetensors`,
    /// the regressors and meta networks as `distiller.safetensors`, and `resume.safetensors`: a run
    /// resumed from it ends bit-identical to an uninterrupted one.
    /// With `replicas` (a data-parallel run), this process's share of every batch.
    public static func distillation(_ config: DistillationConfiguration, run: RunDirectory, resume: Bool,
                                    replicas: (any ReplicaGroup)? = nil) throws -> Trainer {
        let method = config.hyper.method
        if let problem = method.teacherCountProblem(config.teachers.count) { throw DistillationError.teacherCount(problem) }
        let t = config.training
        let spec = try DatasetSpec(parsing: t.data)
        let (trainSet, testSet) = try spec.load()
        let train = t.trainingImages(trainSet)
        guard train.count >= t.batchSize else {
            throw DistillationError.featureShape("the training set has \(train.count) images, fewer than one batch of \(t.batchSize) (distillation drops partial batches)")
        }
        // Full batches only: MMKD's feature meta network is tied to the batch size.
        let trainLoader = BatchLoader(dataset: train, batchSize: t.batchSize, shuffle: true, dropLast: true,
                                      pipeline: spec.pipeline(train: t.augment), seed: t.seed, workers: t.loaderThreads,
                                      share: replicas.map { ($0.rank, $0.size) } ?? (0, 1))
        let testLoader = BatchLoader(dataset: t.testImages(testSet), batchSize: 256, shuffle: false, dropLast: false,
                                     pipeline: spec.pipeline(train: false), seed: 0, workers: t.loaderThreads)
        let teachers = try config.teachers.map { try FrozenTeacher.load(arch: $0.arch, checkpoint: $0.checkpoint, classes: trainSet.classCount) }

        Initialization.seed(t.seed)
        let student = try ModelZoo.make(t.arch, classes: trainSet.classCount)
        // Feature shapes, from test images through every network.
        let probe = try BatchLoader(dataset: testSet, batchSize: 2, shuffle: false, dropLast: false, pipeline: spec.pipeline(train: false),
                                    seed: 0, workers: 1).batches(epoch: 0).next()!.images
        student.eval()
        let studentFeatures = withoutGrad { student.features(probe).features }
        student.train()
        let setup = MethodSetup(studentFeatures: studentFeatures, teacherOutputs: teachers.map { $0.outputs(probe) },
                                trainingLabels: (0..<train.count).map { train.label(at: $0) }, classes: trainSet.classCount,
                                batchSize: t.batchSize, seed: t.seed, hyper: config.hyper)
        let step = DistillationStep.make(config: config, student: student, teachers: teachers, setup: setup)
        step.loadTeacherResults(from: run)
        return try Trainer(configuration: config, run: run, step: step, trainLoader: trainLoader, testLoader: testLoader,
                           classNames: trainSet.classNames, resume: resume, replicas: replicas)
    }

    /// The distillation step, when this loop distils.
    public var distillation: DistillationStep? { step as? DistillationStep }
}

extension DistillationStep {
    /// The method's iteration with everything it trains: the student, one regressor per teacher
    /// when the method regresses a map, the method's parts and meta parts, built in that order
    /// (initialisation draws from the seeded generator in that order).
    public static func make(config: DistillationConfiguration, student: any FeatureClassifier, teachers: [FrozenTeacher],
                            setup: MethodSetup) -> DistillationStep {
        let hyper = config.hyper
        var regressors: [FeatureRegressor] = []
        if let regressed = hyper.regressedMap {
            let index = regressed == .hint ? 2 : setup.studentFeatures.count - 2
            let sChannels = setup.studentFeatures[index].shape[1]
            for o in setup.teacherOutputs {
                guard let map = regressed == .hint ? o.hint : o.penultimate else { preconditionFailure("the set-up's teacher outputs keep no hint map") }
                regressors.append(FeatureRegressor(studentChannels: sChannels, teacherChannels: map.shape[1], form: hyper.effectiveRegressor))
            }
        }
        let learner = DistillationLearner(student: student, regressors: regressors, parts: hyper.method.makeParts(setup))
        let objective = MultiTeacherObjective(hyper: hyper, learner: learner, teachers: teachers, metaParts: hyper.method.makeMetaParts(setup))
        return hyper.method.makeIteration(DistillationStep(config: config, objective: objective))
    }
}
