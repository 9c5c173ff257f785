import Engine

/// FitNet-MKD: the AVER logit term plus a FitNet hint (feature index 2) per teacher through its own
/// regressor, MSE averaged over the teachers, β = 100. With `--compat official` the hint loss is
/// detached, as the official code's (no gradient flows from it).
public struct FitNetMultiTeacher: DistillationMethod {
    public init() {}
    public var name: String { "fitnet-mkd" }
    public var summary: String { "AVER plus a FitNet hint per teacher (β 100)" }
    public var defaultBeta: Float { 100 }
    public func regressedMap(_ hyper: DistillationHyperparameters) -> RegressedMap? { .hint }
    public func terms(_ batch: MethodBatch) -> MethodTerms { FitNet.hintTerms(batch) }
}
