import Engine
import Foundation

/// The random source of parameter initialisation; seed it for reproducible models.
public enum Initialization {
    nonisolated(unsafe) public static var generator = RandomGenerator(seed: 0)

    /// Reseeds the initialisation generator.
    public static func seed(_ seed: UInt64) { generator = RandomGenerator(seed: seed) }

    /// `fan_in` and `fan_out` of a weight as PyTorch computes them (dimension 1 and 0 times the
    /// receptive field).
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        let receptive = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        return (shape[1] * receptive, shape[0] * receptive)
    }

    /// PyTorch's default for `Conv2d`/`Linear` weights: `kaiming_uniform_(a=√5)`, i.e. U(±1/√fan_in).
    public static func defaultWeight(_ shape: [Int]) -> Tensor {
        let bound = 1 / Float(fans(shape).fanIn).squareRoot()
        return Tensor.randomUniform(shape, low: -bound, high: bound, generator: &generator)
    }

    /// PyTorch's default bias: U(±1/√fan_in) of the matching weight.
    public static func defaultBias(_ count: Int, fanIn: Int) -> Tensor {
        let bound = fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
        return Tensor.randomUniform([count], low: -bound, high: bound, generator: &generator)
    }

    /// `kaiming_normal_(mode='fan_out', nonlinearity='relu')`: N(0, 2/fan_out).
    public static func kaimingNormalFanOut(_ shape: [Int]) -> Tensor {
        Tensor.randomNormal(shape, std: (2 / Float(fans(shape).fanOut)).squareRoot(), generator: &generator)
    }
}

extension Module {
    /// Fresh `kaiming_normal_(mode='fan_out', nonlinearity='relu')` values for every convolution weight
    /// (rank-4 parameter), by name, for `update(parameters:)`: the reference models' initialisation.
    public func kaimingNormalConvolutionWeights() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedParameters.filter { $0.1.rank == 4 }.map { ($0.0, Initialization.kaimingNormalFanOut($0.1.shape)) })
    }
}
