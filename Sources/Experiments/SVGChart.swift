import Foundation

/// Small self-contained SVG charts (no scripts, no external resources) for the HTML report.
public enum SVGChart {
    /// A named series of (x, y) points, with an optional ± band per point.
    public struct Series {
        public var label: String
        public var points: [(x: Double, y: Double)]
        public var spread: [Double]?
        public init(label: String, points: [(x: Double, y: Double)], spread: [Double]? = nil) {
            self.label = label; self.points = points; self.spread = spread
        }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Round tick values covering [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var out: [Double] = []
        var v = ceil(lo / step) * step
        while v <= hi + step * 1e-9 { out.append(v); v += step }
        return out
    }

    static func format(_ v: Double) -> String {
        abs(v) >= 100 || v == v.rounded() ? String(format: "%.0f", v) : (abs(v) >= 1 ? String(format: "%.1f", v) : String(format: "%.2g", v))
    }

    /// The opening of a chart: the svg element, the title and horizontal grid lines with labels.
    static func frame(width: Int, height: Int, title: String, titleX: Int, yTicks: [Double], left: Double, right: Double, y: (Double) -> Double) -> String {
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"11\">"
        svg += "<text x=\"\(titleX)\" y=\"16\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>"
        for t in yTicks {
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", left, right, y(t), y(t))
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>", left - 4, y(t) + 4, format(t))
        }
        return svg
    }

    /// A line chart with axes, ticks, a legend and ± bands; `logX` spaces x logarithmically.
    public static func lines(_ series: [Series], title: String, xLabel: String, yLabel: String, logX: Bool = false,
                             width: Int = 560, height: Int = 320) -> String {
        let all = series.flatMap { s in s.points.enumerated().map { (i, p) in (p.x, p.y, s.spread?[i] ?? 0) } }
        guard !all.isEmpty else { return "<p>(no data for \(escape(title)))</p>" }
        let tx: (Double) -> Double = logX ? { log10(max($0, 1e-12)) } : { $0 }
        var (x0, x1) = (all.map { tx($0.0) }.min()!, all.map { tx($0.0) }.max()!)
        var (y0, y1) = (all.map { $0.1 - $0.2 }.min()!, all.map { $0.1 + $0.2 }.max()!)
        if x1 == x0 { x0 -= 1; x1 += 1 }
        if y1 == y0 { y0 -= 1; y1 += 1 }
        let pad = (y1 - y0) * 0.08
        (y0, y1) = (y0 - pad, y1 + pad)
        let (left, right, top, bottom) = (56.0, 150.0, 30.0, 44.0)
        let pw = Double(width) - left - right, ph = Double(height) - top - bottom
        func px(_ x: Double) -> Double { left + (tx(x) - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        var svg = frame(width: width, height: height, title: title, titleX: width / 2 - 75, yTicks: ticks(y0, y1), left: left, right: left + pw, y: py)
        let xTicks: [Double] = logX ? ticks(x0, x1).filter { $0 == $0.rounded() }.map { pow(10, $0) } : ticks(x0, x1)
        for t in xTicks {
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", px(t), px(t), top, top + ph)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>", px(t), top + ph + 14, format(t))
        }
        svg += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444\"/>", left, top, pw, ph)
        svg += String(format: "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%@</text>", left + pw / 2, height - 8, escape(xLabel))
        svg += String(format: "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">%@</text>", top + ph / 2, escape(yLabel))
        for (k, s) in series.enumerated() {
            let colour = palette[k % palette.count]
            let pts = s.points.sorted { $0.x < $1.x }
            if let spread = s.spread, spread.contains(where: { $0 > 0 }) {
                let order = s.points.indices.sorted { s.points[$0].x < s.points[$1].x }
                let upper = order.map { String(format: "%.1f,%.1f", px(s.points[$0].x), py(s.points[$0].y + spread[$0])) }
                let lower = order.reversed().map { String(format: "%.1f,%.1f", px(s.points[$0].x), py(s.points[$0].y - spread[$0])) }
                svg += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(colour)\" fill-opacity=\"0.15\" stroke=\"none\"/>"
            }
            svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(pts.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " "))\"/>"
            for p in pts { svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%@\"/>", px(p.x), py(p.y), colour) }
            let ly = top + 14 * Double(k) + 6
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"3\"/>", left + pw + 10, left + pw + 26, ly, ly, colour)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>", left + pw + 30, ly + 4, escape(s.label))
        }
        return svg + "</svg>"
    }

    /// A bar chart with error bars (mean ± spread), bars labelled underneath.
    public static func bars(_ bars: [(label: String, value: Double, spread: Double)], title: String, yLabel: String,
                            width: Int = 560, height: Int = 320) -> String {
        guard !bars.isEmpty else { return "<p>(no data for \(escape(title)))</p>" }
        var y0 = bars.map { $0.value - $0.spread }.min()!, y1 = bars.map { $0.value + $0.spread }.max()!
        let pad = max((y1 - y0) * 0.25, 0.5)
        (y0, y1) = (y0 - pad, y1 + pad)
        let (left, top, bottom) = (56.0, 30.0, 70.0)
        let pw = Double(width) - left - 20, ph = Double(height) - top - bottom
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        var svg = frame(width: width, height: height, title: title, titleX: width / 2, yTicks: ticks(y0, y1), left: left, right: left + pw, y: py)
        svg += String(format: "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">%@</text>", top + ph / 2, escape(yLabel))
        let slot = pw / Double(bars.count)
        for (k, b) in bars.enumerated() {
            let x = left + slot * Double(k) + slot * 0.15, bw = slot * 0.7
            svg += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"/>", x, py(b.value), bw, top + ph - py(b.value), palette[k % palette.count])
            if b.spread > 0 {
                let cx = x + bw / 2
                svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>", cx, cx, py(b.value - b.spread), py(b.value + b.spread))
            }
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.2f</text>", x + bw / 2, py(b.value + b.spread) - 4, b.value)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>", x + bw / 2, top + ph + 16, escape(b.label))
        }
        svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>", left, left + pw, top + ph, top + ph)
        return svg + "</svg>"
    }
}
