/// Unaligned loads and stores of eight lanes, for the Swift kernels that work a channel block (or
/// eight positions) at a time. Kernel namespaces conform to call them unqualified.
protocol EightLaneMemory {}

extension EightLaneMemory {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
    @inline(__always) static func store<Scalar: SIMDScalar>(_ v: SIMD8<Scalar>, _ p: UnsafeMutablePointer<Scalar>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Scalar>.self)
    }
}
