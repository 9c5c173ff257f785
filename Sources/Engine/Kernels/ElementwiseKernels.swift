import CKernels
import Foundation

/// Raw-pointer elementwise kernels. No autodiff, no shapes beyond what is passed in.
package enum ElementwiseKernels {
    package enum Binary: Sendable { case add, sub, mul, div, max, min, pow, greater, equal, maskPositive }
    package enum Unary: Sendable { case neg, exp, log, sqrt, rsqrt, abs, relu, sign, sigmoid, tanh, square, reciprocal }

    @inline(__always) package static func apply(_ op: Binary, _ a: Float, _ b: Float) -> Float {
        switch op {
        case .add: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        case .max: return Swift.max(a, b)
        case .min: return Swift.min(a, b)
        case .pow: return Foundation.powf(a, b)
        case .greater: return a > b ? 1 : 0
        case .equal: return a == b ? 1 : 0
        case .maskPositive: return b > 0 ? a : 0
        }
    }

    @inline(__always) static func apply(_ op: Unary, _ x: Float) -> Float {
        switch op {
        case .neg: return -x
        case .exp: return Foundation.expf(x)
        case .log: return Foundation.logf(x)
        case .sqrt: return x.squareRoot()
        case .rsqrt: return 1 / x.squareRoot()
        case .abs: return Swift.abs(x)
        case .relu: return x > 0 ? x : 0
        case .sign: return x > 0 ? 1 : (x < 0 ? -1 : 0)
        case .sigmoid: return 1 / (1 + Foundation.expf(-x))
        case .tanh: return Foundation.tanhf(x)
        case .square: return x * x
        case .reciprocal: return 1 / x
        }
    }

    /// `out[i] = op(x[i])` for `count` values.
    package static func unary(_ op: Unary, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        let xs = SendablePointer(UnsafeMutablePointer(mutating: x)), os = SendablePointer(out)
        Parallel.chunks(count) { r in
            let x = xs.pointer, out = os.pointer
            switch op {
            case .relu: for i in r { out[i] = x[i] > 0 ? x[i] : 0 }
            case .neg: for i in r { out[i] = -x[i] }
            case .square: for i in r { out[i] = x[i] * x[i] }
            default: for i in r { out[i] = apply(op, x[i]) }
            }
        }
    }

    /// `out[i] = a[i] * scale + shift`.
    package static func affine(_ a: UnsafePointer<Float>, scale: Float, shift: Float, _ out: UnsafeMutablePointer<Float>, count: Int) {
        let xs = SendablePointer(UnsafeMutablePointer(mutating: a)), os = SendablePointer(out)
        Parallel.chunks(count) { r in
            let a = xs.pointer, out = os.pointer
            for i in r { out[i] = a[i] * scale + shift }
        }
    }

    /// Broadcasting binary op. `aStrides`/`bStrides` are element strides over `shape` (0 on broadcast
    /// dimensions); the output is contiguous of `shape`.
    package static func binary(_ op: Binary, _ a: UnsafePointer<Float>, aStrides: [Int], _ b: UnsafePointer<Float>, bStrides: [Int],
                              _ out: UnsafeMutablePointer<Float>, shape: [Int]) {
        let total = Shape.count(shape)
        if total == 0 { return }
        let (dims, sa, sb) = coalesce(shape, aStrides, bStrides)
        let inner = dims.last!, ia = sa.last!, ib = sb.last!
        let outer = total / inner
        let ap = SendablePointer(UnsafeMutablePointer(mutating: a)), bp = SendablePointer(UnsafeMutablePointer(mutating: b))
        let op_ = SendablePointer(out)
        let grain = max(1, 32_768 / inner)
        if outer == 1 {
            Parallel.chunks(inner) { r in
                row(op, ap.pointer + r.lowerBound * ia, ia, bp.pointer + r.lowerBound * ib, ib, op_.pointer + r.lowerBound, r.count)
            }
            return
        }
        Parallel.chunks(outer, grain: grain) { rows in
            var index = [Int](repeating: 0, count: dims.count - 1)
            // Decode the first row's multi-index.
            var rem = rows.lowerBound
            for d in stride(from: dims.count - 2, through: 0, by: -1) { index[d] = rem % dims[d]; rem /= dims[d] }
            var offA = 0, offB = 0
            for d in 0..<(dims.count - 1) { offA += index[d] * sa[d]; offB += index[d] * sb[d] }
            for r in rows {
                row(op, ap.pointer + offA, ia, bp.pointer + offB, ib, op_.pointer + r * inner, inner)
                var d = dims.count - 2
                while d >= 0 {
                    index[d] += 1; offA += sa[d]; offB += sb[d]
                    if index[d] < dims[d] { break }
                    offA -= sa[d] * dims[d]; offB -= sb[d] * dims[d]; index[d] = 0
                    d -= 1
                }
            }
        }
    }

    /// The code `mmkd_binary_row` (CKernels) knows the op by, or nil.
    @inline(__always) static func kernelCode(_ op: Binary) -> Int32? {
        switch op {
        case .add: return Int32(MMKD_BINARY_ADD)
        case .sub: return Int32(MMKD_BINARY_SUB)
        case .mul: return Int32(MMKD_BINARY_MUL)
        case .div: return Int32(MMKD_BINARY_DIV)
        case .maskPositive: return Int32(MMKD_BINARY_MASK_POSITIVE)
        default: return nil
        }
    }

    /// One row `out[i] = op(a[i·ia], b[i·ib])`: the common contiguous and broadcast-scalar cases in
    /// CKernels (AVX2 or portable, chosen at run time), everything else here.
    @inline(__always)
    package static func row(_ op: Binary, _ a: UnsafePointer<Float>, _ ia: Int, _ b: UnsafePointer<Float>, _ ib: Int,
                    _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        if let code = kernelCode(op), mmkd_binary_row(code, a, ia, b, ib, out, n) != 0 { return }
        for i in 0..<n { out[i] = apply(op, a[i * ia], b[i * ib]) }
    }

    /// Sums `x` (of `shape`) into `out`, whose element strides over `shape` are `outStrides` (0 on the
    /// summed dimensions). `out` is overwritten.
    package static func sumInto(_ x: UnsafePointer<Float>, shape: [Int], _ out: UnsafeMutablePointer<Float>, outStrides: [Int], outCount: Int) {
        out.initialize(repeating: 0, count: outCount)
        let total = Shape.count(shape)
        if total == 0 { return }
        let (dims, _, so) = coalesce(shape, Shape.strides(shape), outStrides)
        let inner = dims.last!, io = so.last!
        let outer = total / inner
        var index = [Int](repeating: 0, count: dims.count - 1)
        var offO = 0
        for r in 0..<outer {
            let xr = x + r * inner, o = out + offO
            if io == 0 {
                // Blocks of 256 summed in 8 Float lanes, blocks accumulated in Double: the error no
                // longer grows with the length (reductions feed second-order products of 10⁵ terms).
                var acc: Double = 0
                var i = 0
                while i + 8 <= inner {
                    var v = SIMD8<Float>()
                    let end = Swift.min(inner - (inner - i) % 8, i + 256)
                    while i < end { v += UnsafeRawPointer(xr + i).loadUnaligned(as: SIMD8<Float>.self); i += 8 }
                    acc += Double(v.sum())
                }
                while i < inner { acc += Double(xr[i]); i += 1 }
                o[0] += Float(acc)
            } else {
                for i in 0..<inner { o[i] += xr[i] }
            }
            var d = dims.count - 2
            while d >= 0 {
                index[d] += 1; offO += so[d]
                if index[d] < dims[d] { break }
                offO -= so[d] * dims[d]; index[d] = 0
                d -= 1
            }
        }
    }

    /// Merges adjacent dimensions that are contiguous for every operand, so that loops run over the
    /// longest possible inner rows. Always returns at least one dimension.
    static func coalesce(_ shape: [Int], _ s1: [Int], _ s2: [Int]) -> ([Int], [Int], [Int]) {
        var dims: [Int] = [], a: [Int] = [], b: [Int] = []
        for i in 0..<shape.count where shape[i] != 1 {
            if let last = dims.last, a.last! == s1[i] * shape[i], b.last! == s2[i] * shape[i] {
                dims[dims.count - 1] = last * shape[i]; a[a.count - 1] = s1[i]; b[b.count - 1] = s2[i]
            } else {
                dims.append(shape[i]); a.append(s1[i]); b.append(s2[i])
            }
        }
        if dims.isEmpty { return ([1], [0], [0]) }
        return (dims, a, b)
    }
}
