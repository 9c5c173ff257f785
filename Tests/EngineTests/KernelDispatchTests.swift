import Engine
import Foundation
import XCTest

/// The run-time-dispatched row kernels (CKernels) against the plain IEEE loop, bit for bit, for
/// every op, contiguous and broadcast operands, lengths around the vector widths and in-place use.
/// `scripts/test.sh` runs this file's suite again with `MMKD_PORTABLE_KERNELS=1`.
final class KernelDispatchTests: XCTestCase {
    func testTheRequestedBuildRuns() {
        if KernelDispatch.portableRequested { XCTAssertFalse(KernelDispatch.usesAVX2, "MMKD_PORTABLE_KERNELS forces the portable build") }
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if !KernelDispatch.portableRequested && cpu.contains(" avx2") && cpu.contains(" fma") {
            XCTAssertTrue(KernelDispatch.usesAVX2, "an AVX2 CPU runs the AVX2 build")
        }
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
}
