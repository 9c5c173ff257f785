import Engine
import XCTest

/// The one comparison of the test suites: passes when the L2 norm of `actual − expected` is at most
/// `absolute` (results that are zero up to round-off) or at most `tolerance` times the expected
/// norm, the norm floored at `normFloor`. Fails on any NaN in `actual` and on a length mismatch.
public func assertClose(_ actual: [Double], _ expected: [Double], tolerance: Double, absolute: Double = 0, normFloor: Double = 1e-12,
                        _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "length \(message())", file: file, line: line)
    guard actual.count == expected.count else { return }
    XCTAssertFalse(actual.contains { $0.isNaN }, "NaN in result \(message())", file: file, line: line)
    var diff = 0.0, norm = 0.0
    for (a, e) in zip(actual, expected) { diff += (a - e) * (a - e); norm += e * e }
    diff = diff.squareRoot(); norm = norm.squareRoot()
    guard diff > absolute else { return }
    XCTAssertLessThanOrEqual(diff, tolerance * max(norm, normFloor),
                             "relative L2 error \(diff / max(norm, normFloor)) (|Δ| = \(diff), |expected| = \(norm)) \(message())", file: file, line: line)
}

/// `assertClose` for tensors, after checking that the shapes agree.
public func assertClose(_ actual: Tensor, _ expected: Tensor, tolerance: Float = 1e-4, absolute: Double = 1e-6, normFloor: Double = 1e-12,
                        _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "shape \(message())", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    assertClose(actual.scalars.map(Double.init), expected.scalars.map(Double.init), tolerance: Double(tolerance), absolute: absolute,
                normFloor: normFloor, message(), file: file, line: line)
}
