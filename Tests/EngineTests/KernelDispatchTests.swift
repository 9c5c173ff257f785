import Engine
import Foundation
import XCTest

/// The run-time-dispatched kernels (CKernels) against plain scalar loops, bit for bit: binary rows
/// for every op, contiguous and broadcast operands, lengths around the vector widths and in-place
/// use; Winograd's tile transforms (both tile sizes, ragged maps, signed zeros, NaN, bias, ReLU).
/// `scripts/test.sh` runs this file's suite again with `MMKD_PORTABLE_KERNELS=1`.
final class KernelDispatchTests: XCTestCase {
    func testTheRequestedBuildRuns() {
        if KernelDispatch.portableRequested { XCTAssertFalse(KernelDispatch.usesAVX2, "MMKD_PORTABLE_KERNELS forces the portable build") }
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if !KernelDispatch.portableRequested && cpu.contains(" avx2") && cpu.contains(" fma") {
            XCTAssertTrue(KernelDispatch.usesAVX2, "an AVX2 CPU runs the AVX2 build")
        }
    }

    /// OpenBLAS runs kernels as wide as the CPU's vector extensions (not the Prescott fallback it
    /// picks for CPU models newer than itself), and the override does not leak into child processes.
    func testOpenBLASKernelsMatchTheCPUsVectorExtensions() throws {
        _ = EngineThreads.configure
        if let replaced = BLASCore.replaced {
            XCTAssertNil(getenv("OPENBLAS_CORETYPE"), "the engine's OPENBLAS_CORETYPE (replacing \(replaced)) stays out of the environment")
        }
        guard getenv("OPENBLAS_CORETYPE") == nil else {
            return XCTAssertNil(BLASCore.replaced, "OPENBLAS_CORETYPE is set: the user's choice stands")
        }
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let level = cpu.contains(" avx512f") && cpu.contains(" avx512bw") && cpu.contains(" avx512dq") && cpu.contains(" avx512vl") ? 3
            : cpu.contains(" avx2") && cpu.contains(" fma") ? 2 : cpu.contains(" avx") ? 1 : 0
        let core = BLASCore.name
        let coreLevel = try XCTUnwrap(BLASCore.vectorLevel(ofCore: core), "OpenBLAS core \(core) is in the table")
        XCTAssertGreaterThanOrEqual(coreLevel, level, "OpenBLAS runs \(core) on a CPU of vector level \(level)")
        XCTAssertEqual(BLASCore.core(forVectorLevel: 3), "SkylakeX")
        XCTAssertNil(BLASCore.vectorLevel(ofCore: "SomeFutureCore"), "an unknown name changes nothing")
    }

    func testBinaryRowsMatchThePlainLoopBitForBit() {
        var g = RandomGenerator(seed: 77)
        let ops: [ElementwiseKernels.Binary] = [.add, .sub, .mul, .div, .maskPositive, .max, .greater]
        for n in [1, 3, 7, 8, 9, 15, 16, 17, 31, 64, 1000] {
            var a = (0..<n).map { _ in g.nextNormal() }, b = (0..<n).map { _ in g.nextNormal() }
            a[0] = -0.0
            if n > 2 { b[1] = 0; a[2] = .nan }
            for op in ops {
                for (ia, ib) in [(1, 1), (1, 0), (0, 1)] {
                    var out = [Float](repeating: 7, count: n)
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in out.withUnsafeMutableBufferPointer { op_ in
                        ElementwiseKernels.row(op, ap.baseAddress!, ia, bp.baseAddress!, ib, op_.baseAddress!, n)
                    } } }
                    let want = (0..<n).map { ElementwiseKernels.apply(op, a[$0 * ia], b[$0 * ib]) }
                    XCTAssertEqual(out.map(\.bitPattern), want.map(\.bitPattern), "\(op) strides (\(ia), \(ib)) n \(n)")
                }
            }
            // In place: the output is the first operand.
            var inPlace = a
            inPlace.withUnsafeMutableBufferPointer { p in
                b.withUnsafeBufferPointer { bp in ElementwiseKernels.row(.mul, p.baseAddress!, 1, bp.baseAddress!, 1, p.baseAddress!, n) }
            }
            XCTAssertEqual(inPlace.map(\.bitPattern), zip(a, b).map { ($0 * $1).bitPattern }, "in place, n \(n)")
        }
    }

    func testWinogradTileTransformsMatchAScalarLoopBitForBit() {
        var g = RandomGenerator(seed: 78)
        for (n, c, h, w) in [(2, 16, 7, 9), (1, 8, 8, 8), (3, 24, 5, 4), (2, 8, 1, 3), (1, 8, 13, 6)] {
            var x = (0..<(n * c * h * w)).map { _ in g.nextNormal() }
            x[0] = -0.0; x[1] = 0; x[5] = .infinity; x[7] = -.nan; x[9] = -0.0
            let bias = (0..<c).map { _ in g.nextNormal() }
            for m in [2, 4] {
                let tiles = WinogradTileOracle(n: n, c: c, h: h, w: w, m: m)
                var v = [Float](repeating: 7, count: tiles.transformedCount)
                x.withUnsafeBufferPointer { xp in v.withUnsafeMutableBufferPointer { vp in
                    if m == 2 { WinogradKernels.transformInput(xp.baseAddress!, n: n, c: c, h: h, w: w, vp.baseAddress!) }
                    else { WinogradF4Kernels.transformInput(xp.baseAddress!, n: n, c: c, h: h, w: w, vp.baseAddress!) }
                } }
                XCTAssertEqual(v.map(\.bitPattern), tiles.input(x).map(\.bitPattern), "input tiles F(\(m)×\(m)) \([n, c, h, w])")
                // Products with signed zeros, k = c.
                let products = v.indices.map { i in i % 17 == 0 ? -0.0 : (i % 29 == 0 ? 0 : Float(Int(g.next() % 1000)) / 100 - 5) }
                for useBias in [false, true] {
                    for relu in [false, true] {
                        var y = [Float](repeating: 7, count: x.count)
                        products.withUnsafeBufferPointer { pp in bias.withUnsafeBufferPointer { bp in y.withUnsafeMutableBufferPointer { yp in
                            let b = useBias ? bp.baseAddress : nil
                            if m == 2 { WinogradKernels.transformOutput(pp.baseAddress!, n: n, k: c, h: h, w: w, bias: b, relu: relu, yp.baseAddress!) }
                            else { WinogradF4Kernels.transformOutput(pp.baseAddress!, n: n, k: c, h: h, w: w, bias: b, relu: relu, yp.baseAddress!) }
                        } } }
                        XCTAssertEqual(y.map(\.bitPattern), tiles.output(products, bias: useBias ? bias : nil, relu: relu).map(\.bitPattern),
                                       "output tiles F(\(m)×\(m)) \([n, c, h, w]) bias \(useBias) relu \(relu)")
                    }
                }
                if m == 2 {
                    var mbar = [Float](repeating: 7, count: tiles.transformedCount)
                    x.withUnsafeBufferPointer { xp in mbar.withUnsafeMutableBufferPointer { mp in
                        WinogradKernels.transformOutputGradient(xp.baseAddress!, n: n, k: c, h: h, w: w, mp.baseAddress!)
                    } }
                    XCTAssertEqual(mbar.map(\.bitPattern), tiles.outputGradient(x).map(\.bitPattern), "output gradient tiles \([n, c, h, w])")
                }
            }
        }
    }
}

/// Winograd's tile transforms one value at a time in plain Float, each lane's operations in the
/// order the kernels promise (negation as 0 − x): the oracle the vector kernels match bit for bit.
struct WinogradTileOracle {
    let n: Int, c: Int, h: Int, w: Int, m: Int
    var side: Int { m + 2 }
    var rows: Int { (h + m - 1) / m }
    var columns: Int { (w + m - 1) / m }
    var plane: Int { n * rows * columns * c }
    var transformedCount: Int { side * side * plane }

    /// NCHW8c position of (image, channel, y, x).
    func at(_ image: Int, _ ch: Int, _ y: Int, _ x: Int) -> Int { ((image * (c / 8) + ch / 8) * h * w + y * w + x) * 8 + ch % 8 }

    func forEachTile(_ body: (_ image: Int, _ ch: Int, _ ty: Int, _ tx: Int, _ offset: Int) -> Void) {
        for image in 0..<n { for ch in 0..<c { for ty in 0..<rows { for tx in 0..<columns {
            body(image, ch, ty, tx, ((image * rows + ty) * columns + tx) * c + ch)
        } } } }
    }

    func input(_ x: [Float]) -> [Float] {
        var v = [Float](repeating: 0, count: transformedCount)
        forEachTile { image, ch, ty, tx, offset in
            var d = [Float](repeating: 0, count: side * side)
            for r in 0..<side { for s in 0..<side {
                let y = m * ty + r - 1, xx = m * tx + s - 1
                if y >= 0 && y < h && xx >= 0 && xx < w { d[r * side + s] = x[at(image, ch, y, xx)] }
            } }
            let t = m == 2 ? Self.f2Input(d) : Self.f4Input(d)
            for xi in t.indices { v[xi * plane + offset] = t[xi] }
        }
        return v
    }

    func output(_ products: [Float], bias: [Float]?, relu: Bool) -> [Float] {
        var y = [Float](repeating: 7, count: n * c * h * w)
        forEachTile { image, ch, ty, tx, offset in
            let d = (0..<(side * side)).map { products[$0 * plane + offset] }
            let o = m == 2 ? Self.f2Output(d) : Self.f4Output(d)
            for r in 0..<m where m * ty + r < h { for s in 0..<m where m * tx + s < w {
                var value = o[r * m + s] + (bias?[ch] ?? 0)
                if relu && value < 0 { value = 0 }
                y[at(image, ch, m * ty + r, m * tx + s)] = value
            } }
        }
        return y
    }

    func outputGradient(_ gy: [Float]) -> [Float] {
        var mbar = [Float](repeating: 0, count: transformedCount)
        forEachTile { image, ch, ty, tx, offset in
            func g(_ y: Int, _ x: Int) -> Float { y < h && x < w ? gy[at(image, ch, y, x)] : 0 }
            let p = [g(2 * ty, 2 * tx), g(2 * ty, 2 * tx) + g(2 * ty + 1, 2 * tx), g(2 * ty, 2 * tx) - g(2 * ty + 1, 2 * tx), 0 - g(2 * ty + 1, 2 * tx)]
            let q = [g(2 * ty, 2 * tx + 1), g(2 * ty, 2 * tx + 1) + g(2 * ty + 1, 2 * tx + 1),
                     g(2 * ty, 2 * tx + 1) - g(2 * ty + 1, 2 * tx + 1), 0 - g(2 * ty + 1, 2 * tx + 1)]
            for r in 0..<4 {
                for (j, value) in [p[r], p[r] + q[r], p[r] - q[r], 0 - q[r]].enumerated() { mbar[(4 * r + j) * plane + offset] = value }
            }
        }
        return mbar
    }

    static func f2Input(_ d: [Float]) -> [Float] {
        var t = [Float](repeating: 0, count: 16), o = t
        for s in 0..<4 { t[s] = d[s] - d[8 + s]; t[4 + s] = d[4 + s] + d[8 + s]; t[8 + s] = d[8 + s] - d[4 + s]; t[12 + s] = d[4 + s] - d[12 + s] }
        for r in stride(from: 0, to: 16, by: 4) {
            o[r] = t[r] - t[r + 2]; o[r + 1] = t[r + 1] + t[r + 2]; o[r + 2] = t[r + 2] - t[r + 1]; o[r + 3] = t[r + 1] - t[r + 3]
        }
        return o
    }

    static func f2Output(_ d: [Float]) -> [Float] {
        var t = [Float](repeating: 0, count: 8)
        for s in 0..<4 { t[s] = d[s] + d[4 + s] + d[8 + s]; t[4 + s] = d[4 + s] - d[8 + s] - d[12 + s] }
        var o = [Float](repeating: 0, count: 4)
        for r in 0..<2 {
            o[2 * r] = t[4 * r] + t[4 * r + 1] + t[4 * r + 2]
            o[2 * r + 1] = t[4 * r + 1] - t[4 * r + 2] - t[4 * r + 3]
        }
        return o
    }

    /// Bᵀ·(d0 … d5) of F(4×4, 3×3).
    static func bt(_ d: [Float]) -> [Float] {
        let a = d[4] - 4 * d[2], b = d[3] - 4 * d[1], e = d[4] - d[2], f = 2 * (d[3] - d[1])
        return [4 * d[0] - 5 * d[2] + d[4], a + b, a - b, e + f, e - f, 4 * d[1] - 5 * d[3] + d[5]]
    }

    static func f4Input(_ d: [Float]) -> [Float] {
        var t = [Float](repeating: 0, count: 36), o = t
        for s in 0..<6 { for (r, value) in bt((0..<6).map { d[$0 * 6 + s] }).enumerated() { t[r * 6 + s] = value } }
        for r in 0..<6 { for (s, value) in bt(Array(t[(r * 6)..<(r * 6 + 6)])).enumerated() { o[r * 6 + s] = value } }
        return o
    }

    /// Aᵀ·(m0 … m5) of F(4×4, 3×3).
    static func at(_ m: [Float]) -> [Float] {
        let s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4]
        return [m[0] + s12 + s34, d12 + 2 * d34, s12 + 4 * s34, d12 + 8 * d34 + m[5]]
    }

    static func f4Output(_ d: [Float]) -> [Float] {
        var t = [Float](repeating: 0, count: 24)
        for q in 0..<6 { for (r, value) in at((0..<6).map { d[$0 * 6 + q] }).enumerated() { t[r * 6 + q] = value } }
        return (0..<4).flatMap { r in at(Array(t[(r * 6)..<(r * 6 + 6)])) }
    }
}
