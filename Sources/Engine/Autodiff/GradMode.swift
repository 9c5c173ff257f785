/// Whether ops record the graph. Off inside `withoutGrad`, and during a backward pass that was
/// not asked to create a graph.
public enum GradMode {
    nonisolated(unsafe) public private(set) static var isEnabled = true

    /// Runs `body` with recording set to `enabled`, restoring the previous setting afterwards.
    @discardableResult
    public static func with<T>(enabled: Bool, _ body: () throws -> T) rethrows -> T {
        let previous = isEnabled
        isEnabled = enabled
        defer { isEnabled = previous }
        return try body()
    }
}

/// Runs `body` without recording the graph (PyTorch's `torch.no_grad()`).
@discardableResult
public func withoutGrad<T>(_ body: () throws -> T) rethrows -> T {
    try GradMode.with(enabled: false, body)
}
