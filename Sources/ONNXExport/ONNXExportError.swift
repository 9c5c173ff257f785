/// Why a network could not be exported, in words that name the op or the setting.
public enum ONNXExportError: Error, CustomStringConvertible, Equatable {
    /// The forward pass applied ops that have no ONNX counterpart here.
    case unsupportedOps([String])
    /// An op with settings that ONNX (or this exporter) cannot express.
    case unsupportedSetting(String)
    /// The exported graph, run on a fresh batch, does not give the network's own answers.
    case verificationFailed(String)

    public var description: String {
        switch self {
        case .unsupportedOps(let names):
            return "the forward pass uses ops that cannot be exported to ONNX yet: \(names.joined(separator: ", "))"
        case .unsupportedSetting(let what):
            return "cannot export \(what)"
        case .verificationFailed(let what):
            return "the exported graph does not compute what the network computes: \(what)"
        }
    }
}
