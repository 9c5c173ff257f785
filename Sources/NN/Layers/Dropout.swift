import Engine

/// PyTorch's `nn.Dropout`: in training mode each value is zeroed with probability `p` and the
/// others scaled by 1/(1 − p); in evaluation mode the identity. The result is `x · mask` with the
/// mask a constant, so gradients of every order pass through the kept values.
///
/// The masks come from `DropoutNoise`'s stream when one is set on the thread (the training loop
/// seeds one per batch, so a resumed run draws the masks an uninterrupted run drew), else from
/// this module's own generator (a fixed seed: constructing a dropout draws nothing from
/// `Initialization`'s generator, so the other modules' initial weights are those without it).
public final class Dropout: Module, UnaryLayer {
    public let p: Float
    private var generator: RandomGenerator

    public init(p: Float = 0.5) {
        precondition(p >= 0 && p <= 1, "Dropout: p must be in [0, 1], got \(p)")
        self.p = p
        generator = RandomGenerator(seed: 0xD60F_0A11)
        super.init()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining, p > 0 else { return x }
        let keep = 1 - p, scale = keep > 0 ? 1 / keep : 0
        let mask = DropoutNoise.draw(fallback: &generator) { g in
            Tensor.make(x.shape) { values, n in for i in 0..<n { values[i] = g.nextUniform() < keep ? scale : 0 } }
        }
        return x * mask
    }
}

/// The random stream dropout masks are drawn from, per thread: set for the duration of `with`.
public enum DropoutNoise {
    private static let stream = PerThread<RandomGenerator?> { nil }

    /// Runs `body` with dropout masks drawn from a stream seeded by `seed` on this thread,
    /// restoring the previous stream afterwards.
    public static func with<T>(seed: UInt64, _ body: () throws -> T) rethrows -> T {
        let previous = stream.value
        stream.value = RandomGenerator(seed: seed)
        defer { stream.value = previous }
        return try body()
    }

    /// `make` applied to the thread's stream when one is set, else to `fallback`.
    static func draw<T>(fallback: inout RandomGenerator, _ make: (inout RandomGenerator) -> T) -> T {
        if stream.value != nil { return make(&stream.value!) }
        return make(&fallback)
    }
}
