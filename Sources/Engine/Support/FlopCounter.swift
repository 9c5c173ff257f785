/// Counts the floating-point operations (2 × multiply-adds) of convolutions and matrix products run
/// inside `count(_:)`: the usual "FLOPs" of a model's forward pass.
public enum FlopCounter {
    nonisolated(unsafe) private(set) static var total: Double? = nil

    /// Runs `body` and returns its result with the FLOPs of the convolutions and products it ran.
    public static func count<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let previous = total
        total = 0
        defer { total = previous.map { $0 + (total ?? 0) } }
        let result = try body()
        return (result, total ?? 0)
    }

    @inline(__always) static func add(_ flops: Double) { if total != nil { total! += flops } }
}
