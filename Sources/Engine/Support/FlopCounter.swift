/// Counts the floating-point operations (2 × multiply-adds) of convolutions and matrix products run
/// inside `count(_:)` on the calling thread: the usual "FLOPs" of a model's forward pass.
public enum FlopCounter {
    /// The running count of the current thread's innermost `count(_:)`, nil outside one.
    private static let running = PerThread<Double?> { nil }

    /// Runs `body` and returns its result with the FLOPs of the convolutions and products it ran.
    public static func count<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let previous = running.value
        running.value = 0
        defer { running.value = previous.map { $0 + (running.value ?? 0) } }
        let result = try body()
        return (result, running.value ?? 0)
    }

    @inline(__always) static func add(_ flops: Double) { if running.value != nil { running.value! += flops } }
}
