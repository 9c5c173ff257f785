import Engine

/// A stored tensor of a module that reflection finds: a parameter or a buffer.
protocol TensorSlot: AnyObject {
    var tensor: Tensor? { get }
    func assign(_ tensor: Tensor)
    var key: String? { get }
    var isBuffer: Bool { get }
}

/// Values a `@Parameter` or `@Buffer` may hold: a tensor, or an optional one (absent bias).
public protocol TensorSlotValue {
    var slotTensor: Tensor? { get }
    static func fromSlot(_ tensor: Tensor) -> Self
}

extension Tensor: TensorSlotValue {
    public var slotTensor: Tensor? { self }
    public static func fromSlot(_ tensor: Tensor) -> Tensor { tensor }
}

extension Optional: TensorSlotValue where Wrapped == Tensor {
    public var slotTensor: Tensor? { self }
    public static func fromSlot(_ tensor: Tensor) -> Tensor? { tensor }
}

/// A trainable tensor of a module. `key` overrides the state-dict name. A constant assigned to it
/// becomes a leaf that requires gradients (as `torch.nn.Parameter`); a recorded tensor (a
/// look-ahead step's result) is kept as it is, so gradients flow through it.
@propertyWrapper
public final class Parameter<Value: TensorSlotValue>: TensorSlot {
    public var wrappedValue: Value {
        didSet { if let t = wrappedValue.slotTensor, !t.requiresGrad { wrappedValue = .fromSlot(t.requiringGrad()) } }
    }
    let key: String?
    public init(wrappedValue: Value, key: String? = nil) {
        self.wrappedValue = wrappedValue.slotTensor.map { .fromSlot($0.requiresGrad ? $0 : $0.requiringGrad()) } ?? wrappedValue
        self.key = key
    }
    var tensor: Tensor? { wrappedValue.slotTensor }
    func assign(_ tensor: Tensor) { wrappedValue = .fromSlot(tensor) }
    var isBuffer: Bool { false }
}

/// A non-trainable tensor of a module's state (running statistics, counters).
@propertyWrapper
public final class Buffer<Value: TensorSlotValue>: TensorSlot {
    public var wrappedValue: Value
    let key: String?
    public init(wrappedValue: Value, key: String? = nil) { self.wrappedValue = wrappedValue; self.key = key }
    var tensor: Tensor? { wrappedValue.slotTensor }
    func assign(_ tensor: Tensor) { wrappedValue = .fromSlot(tensor) }
    var isBuffer: Bool { true }
}
