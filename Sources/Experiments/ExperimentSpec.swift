import Distillation
import Foundation
import Models
import Yams

/// An experiment as its YAML file states it: a data set, teachers (checkpoints, or trained as part
/// of the experiment), teacher–student pairs, methods with their hyper-parameters, seeds and the
/// training budget every cell shares. Keys are snake_case in the file.
///
/// ```yaml
/// name: cifar10-reduced
/// data: folder:/work/data/cifar10-jpeg
/// seeds: [1, 2]
/// budget: {epochs: 5, train_limit: 6000, milestones: [3, 4]}
/// teachers:
///   - {name: r20-a, arch: resnet20, checkpoint: runs/r20-a/best.safetensors}
///   - {name: r20-b, arch: resnet20, train: {seed: 2, epochs: 10}}
/// pairs:
///   - {student: resnet8, teachers: [r20-a, r20-b]}
/// methods:
///   - alone                      # the student trained without teachers
///   - mmkd
///   - {name: mmkd-no-buffer, method: mmkd, buffer: false}
/// ```
public struct ExperimentSpec: Codable, Equatable, Sendable {
    public var name: String
    /// Data set as KIND:PATH (as `--data`).
    public var data: String
    /// Folder of the experiment's cells (default `runs/NAME`, relative to the working directory).
    public var output: String?
    public var seeds: [UInt64]
    public var budget: Budget
    public var teachers: [Teacher]
    public var pairs: [Pair]
    public var methods: [Method]

    enum CodingKeys: String, CodingKey, CaseIterable { case name, data, output, seeds, budget, teachers, pairs, methods }

    /// The keys the file may use, at each level.
    static let allowedKeys = AllowedKeys(CodingKeys.self, nested: [
        "budget": AllowedKeys(Budget.CodingKeys.self),
        "teachers": AllowedKeys(Teacher.CodingKeys.self, nested: ["train": AllowedKeys(Teacher.Training.CodingKeys.self)]),
        "pairs": AllowedKeys(Pair.CodingKeys.self),
        "methods": AllowedKeys(Method.CodingKeys.self),
    ])

    /// The training recipe of every cell; unset fields keep the paper's recipe.
    public struct Budget: Codable, Equatable, Sendable {
        public var epochs: Int
        public var trainLimit: Int?
        public var testLimit: Int?
        public var batchSize: Int?
        public var learningRate: Float?
        public var milestones: [Int]?
        public var lrDecay: Float?
        public var momentum: Float?
        public var weightDecay: Float?
        public var loaderThreads: Int?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case epochs, trainLimit = "train_limit", testLimit = "test_limit", batchSize = "batch_size", learningRate = "lr", milestones, lrDecay = "lr_decay"
            case momentum, weightDecay = "weight_decay", loaderThreads = "loader_threads"
        }

        public init(epochs: Int) { self.epochs = epochs }

        /// The recipe for `arch` with `seed`.
        public func configuration(arch: String, data: String, seed: UInt64) -> TrainingConfiguration {
            var c = TrainingConfiguration(arch: arch, data: data)
            c.epochs = epochs
            c.trainLimit = trainLimit
            c.testLimit = testLimit
            if let batchSize { c.batchSize = batchSize }
            c.learningRate = learningRate ?? TrainingConfiguration.defaultLearningRate(arch: arch)
            if let milestones { c.milestones = milestones }
            if let lrDecay { c.lrDecay = lrDecay }
            if let momentum { c.momentum = momentum }
            if let weightDecay { c.weightDecay = weightDecay }
            if let loaderThreads { c.loaderThreads = loaderThreads }
            c.seed = seed
            return c
        }
    }

    /// A teacher: a checkpoint, or `train` (trained in the experiment with the budget, its own seed
    /// and optionally its own epochs and images per epoch).
    public struct Teacher: Codable, Equatable, Sendable {
        public var name: String
        public var arch: String
        public var checkpoint: String?
        public var train: Training?

        enum CodingKeys: String, CodingKey, CaseIterable { case name, arch, checkpoint, train }

        public struct Training: Codable, Equatable, Sendable {
            public var seed: UInt64
            public var epochs: Int?
            public var trainLimit: Int?
            enum CodingKeys: String, CodingKey, CaseIterable { case seed, epochs, trainLimit = "train_limit" }
        }
    }

    /// A student and the teachers (by name) distilled into it.
    public struct Pair: Codable, Equatable, Sendable {
        public var name: String?
        public var student: String
        public var teachers: [String]

        enum CodingKeys: String, CodingKey, CaseIterable { case name, student, teachers }

        /// The name used for folders and tables: given, or `TEACHERS-to-STUDENT`.
        public var label: String { name ?? "\(teachers.joined(separator: "+"))-to-\(student)" }
    }

    /// A method of the grid: `alone` (the student without teachers) or a `distill` method, with
    /// the hyper-parameters that differ from the method's defaults. Written as just the method's
    /// name when nothing differs.
    public struct Method: Codable, Equatable, Sendable {
        public var name: String
        public var method: String
        public var tau, gamma, alpha, beta: Float?
        public var regressor: String?
        public var compat: String?
        public var metaLr, metaWeightDecay: Float?
        public var metaFreq, bufferSize: Int?
        public var buffer, logitWeights, featureWeights, featureLoss: Bool?
        public var hypergradient: String?
        public var svmC: Double?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, method, tau, gamma, alpha, beta, regressor, compat, metaLr = "meta_lr", metaWeightDecay = "meta_weight_decay"
            case metaFreq = "meta_freq", bufferSize = "buffer_size", buffer, logitWeights = "logit_weights"
            case featureWeights = "feature_weights", featureLoss = "feature_loss", hypergradient, svmC = "svm_c"
        }

        public static let alone = "alone"
        public var isAlone: Bool { method == Method.alone }

        public init(name: String, method: String) { self.name = name; self.method = method }

        public init(from decoder: Decoder) throws {
            if let single = try? decoder.singleValueContainer().decode(String.self) {
                self.init(name: single, method: single)
                return
            }
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let method = try c.decodeIfPresent(String.self, forKey: .method)
            let name = try c.decodeIfPresent(String.self, forKey: .name)
            guard let m = method ?? name else {
                throw DecodingError.keyNotFound(CodingKeys.method, .init(codingPath: c.codingPath, debugDescription: "a method entry needs `method` (or a `name` that is a method)"))
            }
            self.init(name: name ?? m, method: m)
            tau = try c.decodeIfPresent(Float.self, forKey: .tau); gamma = try c.decodeIfPresent(Float.self, forKey: .gamma)
            alpha = try c.decodeIfPresent(Float.self, forKey: .alpha); beta = try c.decodeIfPresent(Float.self, forKey: .beta)
            regressor = try c.decodeIfPresent(String.self, forKey: .regressor); compat = try c.decodeIfPresent(String.self, forKey: .compat)
            metaLr = try c.decodeIfPresent(Float.self, forKey: .metaLr)
            metaWeightDecay = try c.decodeIfPresent(Float.self, forKey: .metaWeightDecay)
            metaFreq = try c.decodeIfPresent(Int.self, forKey: .metaFreq); bufferSize = try c.decodeIfPresent(Int.self, forKey: .bufferSize)
            buffer = try c.decodeIfPresent(Bool.self, forKey: .buffer); logitWeights = try c.decodeIfPresent(Bool.self, forKey: .logitWeights)
            featureWeights = try c.decodeIfPresent(Bool.self, forKey: .featureWeights)
            featureLoss = try c.decodeIfPresent(Bool.self, forKey: .featureLoss)
            hypergradient = try c.decodeIfPresent(String.self, forKey: .hypergradient)
            svmC = try c.decodeIfPresent(Double.self, forKey: .svmC)
        }

        /// The distillation method (nil for `alone`).
        public func distillationMethod() throws -> (any DistillationMethod)? {
            if isAlone { return nil }
            guard let m = DistillationMethods.named(method) else {
                throw ExperimentError.invalid("method '\(name)': unknown method '\(method)'; known: alone, \(DistillationMethods.names.joined(separator: ", "))")
            }
            return m
        }

        /// The method's hyper-parameters: its defaults with this entry's values applied.
        public func hyperparameters() throws -> DistillationHyperparameters {
            guard let m = try distillationMethod() else { throw ExperimentError.invalid("method '\(name)' trains the student alone: it has no distillation hyper-parameters") }
            var h = DistillationHyperparameters(method: m)
            if let tau { h.temperature = tau }
            if let gamma { h.gamma = gamma }
            if let alpha { h.alpha = alpha }
            if let beta { h.beta = beta }
            if featureLoss == false { h.beta = 0 }
            if let regressor {
                guard let form = FeatureRegressor.Form(rawValue: regressor) else {
                    throw ExperimentError.invalid("method '\(name)': regressor must be 1x1 or convs, got '\(regressor)'")
                }
                h.regressor = form
            }
            if let compat {
                guard ["paper", "official"].contains(compat) else { throw ExperimentError.invalid("method '\(name)': compat must be paper or official, got '\(compat)'") }
                h.compatOfficial = compat == "official"
            }
            if let metaLr { h.metaLearningRate = metaLr }
            if let metaWeightDecay { h.metaWeightDecay = metaWeightDecay }
            if let metaFreq { h.metaFrequency = metaFreq }
            if let bufferSize { h.bufferSize = bufferSize }
            if let buffer { h.useBuffer = buffer }
            if let logitWeights { h.learnLogitWeights = logitWeights }
            if let featureWeights { h.learnFeatureWeights = featureWeights }
            if let hypergradient {
                guard let mode = HypergradientMode(rawValue: hypergradient) else {
                    throw ExperimentError.invalid("method '\(name)': hypergradient must be exact or first-order, got '\(hypergradient)'")
                }
                h.hypergradient = mode
            }
            if let svmC { h.svmC = svmC }
            return h
        }
    }
}

extension ExperimentSpec {
    /// Reads and checks an experiment file; errors name the file, the line and column, and what is
    /// wrong.
    public static func load(_ path: String) throws -> ExperimentSpec {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ExperimentError.invalid("\(path): cannot read the experiment file (missing, unreadable or not UTF-8)")
        }
        return try parse(text, path: path)
    }

    /// Parses and checks an experiment file's text strictly: YAML syntax, unknown or repeated keys,
    /// types and values; `path` names the file in errors.
    package static func parse(_ text: String, path: String) throws -> ExperimentSpec {
        let root: Node
        do { try StrictYAML.checkNesting(text) } catch ExperimentError.invalid(let why) { throw ExperimentError.invalid("\(path):\(why)") }
        do { root = try Yams.compose(yaml: text) ?? Node("") } catch {
            throw ExperimentError.invalid("\(path):\(StrictYAML.describe(error))")
        }
        do { try StrictYAML.check(root, against: allowedKeys) } catch ExperimentError.invalid(let why) {
            throw ExperimentError.invalid("\(path):\(why)")
        }
        let spec: ExperimentSpec
        do {
            spec = try YAMLDecoder().decode(ExperimentSpec.self, from: text)
        } catch let error as DecodingError {
            let context: DecodingError.Context? = switch error {
            case let .keyNotFound(_, c), let .typeMismatch(_, c), let .valueNotFound(_, c), let .dataCorrupted(c): c
            @unknown default: nil
            }
            let node = context.map { StrictYAML.node(at: $0.codingPath, in: root) }
            var why = ExperimentError.describe(error)
            if case let .typeMismatch(type, c) = error, let node {
                let found = switch node {
                case .scalar(let scalar): "'\(scalar.string)'"
                case .sequence: "a list"
                case .mapping: "a mapping"
                }
                why = "\(ExperimentError.describe(path: c)): expected \(type == Node.Scalar.self ? "a single value" : "\(type)"), got \(found)"
            }
            throw ExperimentError.invalid("\(path):\(StrictYAML.position(node))\(why)")
        } catch {
            throw ExperimentError.invalid("\(path):\(StrictYAML.describe(error))")
        }
        do { try spec.validate() } catch ExperimentError.invalid(let why) { throw ExperimentError.invalid("\(path): \(why)") }
        return spec
    }

    /// The folder of the cells.
    public var outputPath: String { output ?? "runs/\(name)" }

    /// Checks names, architectures, teacher counts and hyper-parameters before anything runs.
    public func validate() throws {
        func known(_ arch: String) -> Bool { ModelZoo.allNames.contains(arch) }
        guard !name.isEmpty, !name.contains("/") else { throw ExperimentError.invalid("name must be a non-empty folder name, got '\(name)'") }
        guard !seeds.isEmpty else { throw ExperimentError.invalid("seeds: give at least one seed") }
        guard Set(seeds).count == seeds.count else { throw ExperimentError.invalid("seeds: \(seeds) repeats a seed") }
        guard budget.epochs > 0 else { throw ExperimentError.invalid("budget.epochs must be positive, got \(budget.epochs)") }
        if let l = budget.trainLimit, l <= 0 { throw ExperimentError.invalid("budget.train_limit must be positive, got \(l)") }
        if let l = budget.testLimit, l <= 0 { throw ExperimentError.invalid("budget.test_limit must be positive, got \(l)") }
        if let b = budget.batchSize, b < 2 { throw ExperimentError.invalid("budget.batch_size must be at least 2, got \(b)") }
        var teacherNames = Set<String>()
        for t in teachers {
            guard teacherNames.insert(t.name).inserted else { throw ExperimentError.invalid("teachers: the name '\(t.name)' appears twice") }
            guard known(t.arch) else { throw ExperimentError.invalid("teacher '\(t.name)': unknown architecture '\(t.arch)'") }
            switch (t.checkpoint, t.train) {
            case (nil, nil): throw ExperimentError.invalid("teacher '\(t.name)': give a checkpoint or train: {seed: N}")
            case (.some, .some): throw ExperimentError.invalid("teacher '\(t.name)': give a checkpoint or train, not both")
            case let (.some(path), nil):
                guard FileManager.default.fileExists(atPath: path) else { throw ExperimentError.invalid("teacher '\(t.name)': no checkpoint at \(path)") }
            default: break
            }
        }
        guard !pairs.isEmpty else { throw ExperimentError.invalid("pairs: give at least one student with its teachers") }
        guard !methods.isEmpty else { throw ExperimentError.invalid("methods: give at least one method") }
        guard Set(pairs.map(\.label)).count == pairs.count else { throw ExperimentError.invalid("pairs: two pairs share the name; give each a name") }
        guard Set(methods.map(\.name)).count == methods.count else { throw ExperimentError.invalid("methods: two entries share a name; give each a distinct name") }
        for p in pairs {
            guard known(p.student) else { throw ExperimentError.invalid("pair '\(p.label)': unknown student architecture '\(p.student)'") }
            guard !p.teachers.isEmpty else { throw ExperimentError.invalid("pair '\(p.label)': give at least one teacher") }
            for t in p.teachers where !teacherNames.contains(t) {
                throw ExperimentError.invalid("pair '\(p.label)': no teacher named '\(t)' (teachers: \(teachers.map(\.name).joined(separator: ", ")))")
            }
            for m in methods {
                guard let method = try m.distillationMethod() else { continue }
                _ = try m.hyperparameters()
                if let problem = method.teacherCountProblem(p.teachers.count) {
                    throw ExperimentError.invalid("method '\(m.name)' on pair '\(p.label)': \(problem)")
                }
            }
        }
    }
}
