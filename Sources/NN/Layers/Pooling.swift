import Engine

/// PyTorch's `nn.MaxPool2d` (floor mode).
public final class MaxPool2d: Module, UnaryLayer {
    public let kernel: Int, stride: Int, padding: Int
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        kernel = kernelSize; self.stride = stride ?? kernelSize; self.padding = padding
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.maxPool2d(kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding))
    }
}

/// PyTorch's `nn.AvgPool2d` (floor mode, padding counted).
public final class AvgPool2d: Module, UnaryLayer {
    public let kernel: Int, stride: Int, padding: Int
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        kernel = kernelSize; self.stride = stride ?? kernelSize; self.padding = padding
        super.init()
    }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.avgPool2d(kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding))
    }
}

/// PyTorch's `nn.AdaptiveAvgPool2d`.
public final class AdaptiveAvgPool2d: Module, UnaryLayer {
    public let size: (Int, Int)
    public init(_ size: (Int, Int)) { self.size = size; super.init() }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.adaptiveAvgPool2d(size) }
}
