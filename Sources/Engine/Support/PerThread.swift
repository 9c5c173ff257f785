#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value of which every thread has its own copy, made by `initial` on the thread's first use and
/// released when the thread ends (pthread-specific data). For the caches of objects that must not be
/// shared between threads: oneDNN primitives and the memory objects each call binds, and the
/// formats and counters that go with them. A thread never sees another thread's copy, so no lock is
/// needed and nothing is contended.
package final class PerThread<Value>: @unchecked Sendable {
    private final class Box {
        var value: Value
        init(_ value: Value) { self.value = value }
    }

    private let key: pthread_key_t
    private let initial: @Sendable () -> Value

    package init(_ initial: @escaping @Sendable () -> Value) {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { raw in
            if let raw { Unmanaged<AnyObject>.fromOpaque(raw).release() }
        }
        precondition(status == 0, "PerThread: pthread_key_create failed (\(status))")
        self.key = key
        self.initial = initial
    }

    private var box: Box {
        if let raw = pthread_getspecific(key) { return Unmanaged<Box>.fromOpaque(raw).takeUnretainedValue() }
        let box = Box(initial())
        pthread_setspecific(key, Unmanaged.passRetained(box).toOpaque())
        return box
    }

    /// The current thread's copy.
    package var value: Value {
        get { box.value }
        _modify { yield &box.value }
    }
}
