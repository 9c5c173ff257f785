import Engine

/// A network component. Parameters (`@Parameter`), buffers (`@Buffer`) and child modules are
/// discovered by reflection over stored properties, in declaration order, and named as PyTorch
/// names them in a state dict: camelCase property names become snake_case (`runningMean` →
/// `running_mean`), arrays of modules get indices (`layer1.0.conv1.weight`); a wrapper's `key:`
/// overrides the name.
///
/// Every change of a parameter or buffer goes through `update(parameters:)` /
/// `update(buffers:)` / `load(_:)`; tensors themselves are immutable.
open class Module {
    public private(set) var isTraining = true
    private var reflected: Reflection?

    public init() {}

    struct Reflection {
        var slots: [(String, TensorSlot)] = []
        var children: [(String, Module)] = []
    }

    private func reflection() -> Reflection {
        if let reflected { return reflected }
        var result = Reflection()
        var mirror: Mirror? = Mirror(reflecting: self)
        var levels: [Mirror] = []
        while let m = mirror, m.subjectType != Module.self { levels.append(m); mirror = m.superclassMirror }
        for level in levels.reversed() {
            for child in level.children {
                guard var label = child.label else { continue }
                if label.hasPrefix("_") { label.removeFirst() }
                if let slot = child.value as? TensorSlot {
                    result.slots.append((slot.key ?? Module.snakeCase(label), slot))
                } else if let custom = declaredChildren(label: label, value: child.value) {
                    result.children.append(contentsOf: custom)
                }
            }
        }
        reflected = result
        return result
    }

    /// The state-dict name of the child module stored in property `property`; by default the
    /// property name in snake_case. Override where the reference model's name differs (a PyTorch
    /// attribute that is itself camelCase, such as `convShortcut`).
    open func stateDictName(ofChild property: String) -> String { Module.snakeCase(property) }

    private func declaredChildren(label: String, value: Any) -> [(String, Module)]? {
        let name = stateDictName(ofChild: label)
        if let m = value as? Module { return [(name, m)] }
        if let list = value as? [Module] { return list.enumerated().map { ("\(name).\($0.offset)", $0.element) } }
        // Optional<Module> arrives wrapped: unwrap one level.
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            guard let inner = mirror.children.first?.value else { return [] }
            return declaredChildren(label: label, value: inner)
        }
        return nil
    }

    /// `camelCase` → `camel_case` (digits stay attached: `layer1`, `conv1x1`).
    static func snakeCase(_ name: String) -> String {
        var out = ""
        for ch in name {
            if ch.isUppercase { if !out.isEmpty { out.append("_") }; out.append(Character(ch.lowercased())) } else { out.append(ch) }
        }
        return out
    }

    /// Direct children with their state-dict names. Override to name children differently.
    open var namedChildren: [(String, Module)] { reflection().children }

    /// Every (name, tensor) of this module and its descendants in PyTorch's state-dict order (own
    /// parameters, own buffers, then each child), optionally filtered to parameters or buffers.
    public func namedTensors(parameters: Bool = true, buffers: Bool = true) -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        collect(prefix: "", parameters: parameters, buffers: buffers) { name, slot in
            if let t = slot.tensor { out.append((name, t)) }
        }
        return out
    }

    func collect(prefix: String, parameters: Bool, buffers: Bool, _ visit: (String, TensorSlot) -> Void) {
        let r = reflection()
        for (name, slot) in r.slots where !slot.isBuffer && parameters { visit(prefix + name, slot) }
        for (name, slot) in r.slots where slot.isBuffer && buffers { visit(prefix + name, slot) }
        for (name, child) in namedChildren { child.collect(prefix: prefix + name + ".", parameters: parameters, buffers: buffers, visit) }
    }

    /// Trainable parameters by name.
    public var namedParameters: [(String, Tensor)] { namedTensors(buffers: false) }
    /// Trainable parameters in state-dict order.
    public var parameters: [Tensor] { namedParameters.map(\.1) }
    /// Buffers (running statistics, counters) by name.
    public var namedBuffers: [(String, Tensor)] { namedTensors(parameters: false) }
    /// Parameters and buffers in state-dict order (PyTorch's `state_dict()`).
    public var stateDict: [(String, Tensor)] { namedTensors() }
    /// Number of trainable values.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Replaces parameters by name. Unknown names and shape changes are programming errors and trap
    /// with the name and both shapes.
    public func update(parameters: [String: Tensor]) { assign(parameters, parameters: true, buffers: false) }
    /// Replaces buffers by name.
    public func update(buffers: [String: Tensor]) { assign(buffers, parameters: false, buffers: true) }

    /// Loads a (possibly partial) state dict: every given name must exist with the same shape.
    /// Use `StateDictError` checking via `validate(_:)` first for untrusted input.
    public func load(_ state: [String: Tensor]) { assign(state, parameters: true, buffers: true) }

    private func assign(_ values: [String: Tensor], parameters: Bool, buffers: Bool) {
        var remaining = values.count
        collect(prefix: "", parameters: parameters, buffers: buffers) { name, slot in
            guard let t = values[name] else { return }
            remaining -= 1
            if let old = slot.tensor {
                precondition(old.shape == t.shape, "update: \(name) has shape \(old.shape), got \(t.shape)")
            }
            slot.assign(t)
        }
        if remaining != 0 {
            let known = Set(namedTensors(parameters: parameters, buffers: buffers).map(\.0))
            let unknown = values.keys.filter { !known.contains($0) }.sorted()
            preconditionFailure("update: no \(parameters ? "parameter" : "")\(parameters && buffers ? " or " : "")\(buffers ? "buffer" : "") named \(unknown.joined(separator: ", "))")
        }
    }

    /// Checks that `state` fits this module exactly (same names, same shapes), naming the first
    /// mismatch.
    public func validate(_ state: [String: Tensor]) throws {
        let own = stateDict
        for (name, t) in own {
            guard let other = state[name] else { throw StateDictError.missingKey(name, expectedShape: t.shape) }
            if other.shape != t.shape { throw StateDictError.shapeMismatch(name, expected: t.shape, found: other.shape) }
        }
        let names = Set(own.map(\.0))
        if let extra = state.keys.sorted().first(where: { !names.contains($0) }) { throw StateDictError.unexpectedKey(extra) }
    }

    /// Switches this module and its descendants to training (batch statistics) or evaluation mode.
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, child) in namedChildren { child.train(on) }
    }

    /// Evaluation mode (PyTorch's `eval()`).
    public func eval() { train(false) }

    /// Frees what this module and its descendants keep only to speed up inference (a convolution's
    /// folded batch norm); it is rebuilt on next use. For frozen networks idle for a while.
    open func releaseInferenceCaches() {
        for (_, child) in namedChildren { child.releaseInferenceCaches() }
    }

    /// Every tensor of the state dict, by reference (tensors are immutable, so this is a snapshot).
    public func snapshot() -> [String: Tensor] { Dictionary(uniqueKeysWithValues: stateDict) }

    /// Restores a snapshot taken by `snapshot()`.
    public func restore(_ snapshot: [String: Tensor]) { load(snapshot) }
}

/// Why a state dict does not fit a module.
public enum StateDictError: Error, CustomStringConvertible, Equatable {
    case missingKey(String, expectedShape: [Int])
    case unexpectedKey(String)
    case shapeMismatch(String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case let .missingKey(k, s): return "state dict has no entry '\(k)' (expected shape \(s))"
        case let .unexpectedKey(k): return "state dict has an entry '\(k)' that the architecture does not have"
        case let .shapeMismatch(k, e, f): return "state dict entry '\(k)' has shape \(f), the architecture expects \(e)"
        }
    }
}

/// A module that maps one tensor to one tensor.
public protocol UnaryLayer: Module {
    func callAsFunction(_ x: Tensor) -> Tensor
}
