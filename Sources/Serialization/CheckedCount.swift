import Foundation

/// Overflow-checked sizes for the parsers of files: every count, offset, stride or byte length read
/// from a file goes through these before anything is allocated or read, so that a hostile value
/// gives nil (and the parser a clear error naming the field), never an arithmetic trap.
package enum CheckedCount {
    /// The product of `factors` when every one is ≥ 0 and the product fits in `Int`, else nil.
    package static func product(_ factors: [Int]) -> Int? {
        var result = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (p, overflow) = result.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            result = p
        }
        return result
    }

    /// `a × b` for non-negative operands when it fits in `Int`, else nil.
    package static func product(_ a: Int, _ b: Int) -> Int? { product([a, b]) }

    /// `a + b` when it fits in `Int`, else nil.
    package static func sum(_ a: Int, _ b: Int) -> Int? {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : s
    }

    /// A JSON number as an integer: nil unless it is a whole number of magnitude at most 2⁵³ (every
    /// size or offset of a real file is far smaller; beyond 2⁵³ a JSON number is not exact).
    package static func integer(_ number: NSNumber) -> Int? {
        let d = number.doubleValue
        guard d.isFinite, d == d.rounded(.towardZero), Swift.abs(d) <= 9_007_199_254_740_992 else { return nil }
        return Int(d)
    }
}
