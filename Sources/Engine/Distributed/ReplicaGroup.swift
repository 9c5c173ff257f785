/// The processes of a data-parallel run as the engine sees them: each holds a replica of the same
/// model and its own slice of every batch, and they combine values by elementwise sums and
/// concatenations. Every process must make the same calls, with the same counts, in the same order
/// (collective operations); the sums are identical on every process.
///
/// The engine defines the contract and the differentiable ops built on it
/// (`Tensor.summedAcrossReplicas`, `Tensor.gatheredAcrossReplicas`); the `Distributed` target
/// implements it on MPI. A run of one process has no group (`Replicas.current` is nil) and never
/// reaches these calls.
public protocol ReplicaGroup: AnyObject, Sendable {
    /// This process's position in the group, 0 ..< size.
    var rank: Int { get }
    /// How many processes the group holds.
    var size: Int { get }
    /// Replaces each value by its sum over the group's processes.
    func sum(_ values: UnsafeMutableBufferPointer<Float>)
    /// Replaces each value by its sum over the group's processes.
    func sum(_ values: UnsafeMutableBufferPointer<Double>)
    /// Starts replacing each value by its sum over the group and returns without waiting for the
    /// other processes; `values` must stay alive and untouched until the returned sum's `wait()` has
    /// returned. Sums complete in the order they were started, on every process.
    func startSum(_ values: UnsafeMutableBufferPointer<Float>) -> any StartedSum
    /// Every process's `local` (the same count on each) concatenated in rank order into `all`
    /// (`size × local.count` values).
    func gather(_ local: UnsafeBufferPointer<Float>, into all: UnsafeMutableBufferPointer<Float>)
    /// Every process's bytes (counts may differ), in rank order.
    func gather(bytes: [UInt8]) -> [[UInt8]]
    /// Process `root`'s bytes, on every process.
    func broadcast(bytes: [UInt8], from root: Int) -> [UInt8]
    /// What this process has sent through the group so far and the seconds spent in its calls
    /// (for the metrics; zero where not counted).
    var traffic: (bytes: Int, seconds: Double) { get }
}

/// A sum over a replica group in flight (`ReplicaGroup.startSum`).
public protocol StartedSum: AnyObject {
    /// Lets the sum advance (and the group's other started sums); true once it is complete.
    func test() -> Bool
    /// Returns once the sum is complete and its values final.
    func wait()
}

/// A sum that was complete when it was started (a group that cannot overlap its sums).
public final class CompletedSum: StartedSum {
    public init() {}
    public func test() -> Bool { true }
    public func wait() {}
}

extension ReplicaGroup {
    public var traffic: (bytes: Int, seconds: Double) { (0, 0) }

    /// Sums at once (no overlap).
    public func startSum(_ values: UnsafeMutableBufferPointer<Float>) -> any StartedSum {
        sum(values)
        return CompletedSum()
    }

    /// `values` summed over the group.
    public func sum(_ values: [Double]) -> [Double] {
        var v = values
        v.withUnsafeMutableBufferPointer { sum($0) }
        return v
    }

    /// `values` summed over the group.
    public func sum(_ values: [Float]) -> [Float] {
        var v = values
        v.withUnsafeMutableBufferPointer { sum($0) }
        return v
    }

    /// Every process's integers (counts may differ), concatenated in rank order.
    public func gather(_ values: [Int]) -> [Int] {
        let bytes = values.withUnsafeBytes { Array($0) }
        return gather(bytes: bytes).flatMap { part in
            part.withUnsafeBytes { Array($0.bindMemory(to: Int.self)) }
        }
    }

    /// Whether every process passed the same `value`.
    public func agree(on value: UInt64) -> Bool {
        let all = gather([Int(bitPattern: UInt(value))])
        return all.allSatisfy { $0 == all[0] }
    }

    /// Returns once every process of the group has called it.
    public func synchronize() { _ = sum([0.0]) }

    /// Whether process `root` says yes (a decision every process must take the same way).
    public func decide(_ yes: Bool, by root: Int = 0) -> Bool { broadcast(bytes: [yes ? 1 : 0], from: root) == [1] }

    /// The slice `rank·n/size ..< (rank+1)·n/size` of `0 ..< n` this process takes.
    public func share(of n: Int) -> Range<Int> { (rank * n / size) ..< ((rank + 1) * n / size) }
}

/// The replica group the calling thread's ops combine over, or nil for a process on its own. The
/// training loop sets it around each step (`Replicas.with`); batch norm in training mode, the
/// optimiser's gradient sums and the distillation methods' batch-level quantities read it.
public enum Replicas {
    private static let stack = PerThread<[any ReplicaGroup]> { [] }

    /// The group set by the innermost `with` on this thread, or nil (a group of one counts as none).
    public static var current: (any ReplicaGroup)? { stack.value.last }

    /// Runs `body` with `group` as the current group (nil, or a group of one: none).
    public static func with<T>(_ group: (any ReplicaGroup)?, _ body: () throws -> T) rethrows -> T {
        guard let group, group.size > 1 else {
            guard !stack.value.isEmpty else { return try body() }
            let saved = stack.value
            stack.value = []
            defer { stack.value = saved }
            return try body()
        }
        stack.value.append(group)
        defer { stack.value.removeLast() }
        return try body()
    }

    /// The gradients of replicated parameters averaged over the current group (one sum for all of
    /// them), or `gradients` unchanged without one. Each process's gradients are those of its own
    /// batch slice's loss; with equal slices, their mean is the gradient of the whole batch's loss.
    /// Differentiable (when recording, the average is recorded as ops), so look-ahead steps of
    /// meta-learning stay exact functions of every process's gradients.
    public static func averaged(_ gradients: [Tensor]) -> [Tensor] {
        guard let group = current, !gradients.isEmpty else { return gradients }
        let flat = Tensor.concat(gradients.map { $0.reshaped([$0.count]) }, axis: 0)
        let mean = flat.summedAcrossReplicas(group).scaled(by: 1 / Float(group.size))
        var start = 0
        return gradients.map { g in
            defer { start += g.count }
            return mean.slice(axis: 0, start ..< start + g.count).reshaped(g.shape)
        }
    }
}
