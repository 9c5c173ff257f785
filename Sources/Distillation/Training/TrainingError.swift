/// Why a training run stopped early.
public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(epoch: Int, batch: Int, value: Float)
    case nonFiniteParameter(epoch: Int, batch: Int, name: String)
    case resumeMismatch(path: String, reason: String)
    case runInUse(path: String, holder: String)
    case runDirectory(path: String, reason: String)
    /// A data-parallel run that cannot split its batches equally over its processes.
    case unevenShares(reason: String)
    /// The processes of a data-parallel run no longer hold the same parameters.
    case replicasDiverged(epoch: Int, hashes: [Int])

    public var description: String {
        switch self {
        case let .nonFiniteLoss(epoch, batch, value):
            return "the loss became \(value) at epoch \(epoch + 1), batch \(batch + 1); the last good checkpoints are kept (try a lower --lr)"
        case let .nonFiniteParameter(epoch, batch, name):
            return "'\(name)' holds non-finite values after epoch \(epoch + 1), batch \(batch + 1) (the loss was still finite); this epoch's checkpoints were not written, the last good ones are kept (try a lower --lr)"
        case let .resumeMismatch(path, reason): return "\(path): cannot resume: \(reason)"
        case let .runInUse(path, holder):
            return "\(path): the run is in use by \(holder); wait for it to end, or choose another --name"
        case let .runDirectory(path, reason): return "\(path): cannot use the run directory: \(reason)"
        case let .unevenShares(reason): return "data-parallel run: \(reason)"
        case let .replicasDiverged(epoch, hashes):
            return "data-parallel run: after epoch \(epoch + 1) the processes hold different parameters (hashes by rank: \(hashes.map { String(UInt(bitPattern: $0), radix: 16) }.joined(separator: ", "))); the run stops, its last checkpoints are those of the epoch before"
        }
    }
}
