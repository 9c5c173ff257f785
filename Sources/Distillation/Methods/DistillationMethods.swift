import Engine

/// The registry: every distillation method, in the order help texts list them. This is the only
/// place a method is named; the CLI (`--method`, `--help`), experiment files, configurations and
/// reports find methods here.
public enum DistillationMethods {
    public static let all: [any DistillationMethod] = [
        KnowledgeDistillation(), FitNet(), AttentionTransfer(), VariationalInformationDistillation(),
        ContrastiveRepresentationDistillation(), SemanticCalibration(), SoftmaxRegressionRepresentation(),
        AverageTeachers(), FitNetMultiTeacher(), EntropyWeightedTeachers(),
        AgreementWeightedTeachers(target: .logits), AgreementWeightedTeachers(target: .feature),
        ConfidenceAwareTeachers(), MetaLearnedTeacherWeights(),
    ]

    /// The paper's method: reports measure ARI for it and chart its ablations.
    public static let proposed: any DistillationMethod = MetaLearnedTeacherWeights()
    /// The methods whose β sweeps reports chart (the paper's Figure 4).
    public static let betaSwept: [any DistillationMethod] = [MetaLearnedTeacherWeights(), AverageTeachers()]

    /// Every method's name.
    public static var names: [String] { all.map(\.name) }

    /// The method called `name`, or nil.
    public static func named(_ name: String) -> (any DistillationMethod)? { all.first { $0.name == name } }

    /// The method called `name`; an unknown name is an error listing the known ones.
    public static func method(named name: String) throws -> any DistillationMethod {
        guard let method = named(name) else { throw DistillationError.unknownMethod(name, known: names) }
        return method
    }

    /// One line per method: name and summary (for `--help`).
    public static var help: String { all.map { "\($0.name): \($0.summary)" }.joined(separator: "\n") }
}
