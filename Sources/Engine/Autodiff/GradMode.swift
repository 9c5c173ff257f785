#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether ops record the graph, per thread (as PyTorch's thread-local grad mode): on by default
/// in every thread; off inside `withoutGrad`, and during a backward pass that was not asked to
/// create a graph. A setting made in one thread never changes what another records.
public enum GradMode {
    /// The thread-specific slot: empty (nil) means enabled, the default of a new thread.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "GradMode: pthread_key_create failed (\(status))")
        return key
    }()

    /// Whether ops record the graph on the current thread.
    public static var isEnabled: Bool { pthread_getspecific(key) == nil }

    private static func set(_ enabled: Bool) {
        pthread_setspecific(key, enabled ? nil : UnsafeRawPointer(bitPattern: 1))
    }

    /// Runs `body` with recording set to `enabled` on the current thread, restoring the previous
    /// setting afterwards.
    @discardableResult
    public static func with<T>(enabled: Bool, _ body: () throws -> T) rethrows -> T {
        let previous = isEnabled
        set(enabled)
        defer { set(previous) }
        return try body()
    }
}

/// Runs `body` without recording the graph (PyTorch's `torch.no_grad()`).
@discardableResult
public func withoutGrad<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.with(enabled: false, body)
}
