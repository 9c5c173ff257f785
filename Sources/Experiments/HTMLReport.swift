import Distillation
import Foundation

/// The experiment as one self-contained HTML file (inline SVG charts and PNG figures, no scripts,
/// nothing fetched): the tables of `ExperimentReport`, accuracy curves per method, MMKD's learned
/// teacher weights over training, the β sensitivity of MMKD and AVER (the paper's Figure 4), the
/// ablations (Figure 5) and Grad-CAM heat maps (Figure 3).
public struct HTMLReport {
    public let report: ExperimentReport

    public init(report: ExperimentReport) { self.report = report }

    var spec: ExperimentSpec { report.spec }

    /// Per epoch: mean and standard deviation over the finished seeds of a metric of one cell group.
    func curve(pair: ExperimentSpec.Pair, method: ExperimentSpec.Method, value: ([String: Any]) -> Double?) -> SVGChart.Series? {
        let runs = spec.seeds.compactMap { seed -> [Double]? in
            guard let rows = report.metrics[spec.cellPath(pair: pair, method: method, seed: seed)] else { return nil }
            let v = rows.compactMap(value)
            return v.count == rows.count ? v : nil
        }
        guard let n = runs.map(\.count).min(), n > 0 else { return nil }
        let stats = (0..<n).map { e in ExperimentReport.Statistic(values: runs.map { $0[e] }) }
        return SVGChart.Series(label: method.isAlone ? "student alone" : method.name,
                               points: stats.enumerated().map { (Double($0.offset + 1), $0.element.mean) }, spread: stats.map(\.std))
    }

    /// β of an entry as it ran (its own, else the method's default).
    func beta(_ m: ExperimentSpec.Method) -> Float? { (try? m.hyperparameters())?.beta }

    /// The β sweeps of the grid: per swept method (`DistillationMethods.betaSwept`), entries that
    /// differ only in β.
    func betaSweeps(pair: ExperimentSpec.Pair) -> [SVGChart.Series] {
        DistillationMethods.betaSwept.map(\.name).compactMap { kind -> SVGChart.Series? in
            let entries = spec.methods.filter { m in
                guard m.method == kind else { return false }
                var plain = m; plain.name = ""; plain.beta = nil
                var reference = ExperimentSpec.Method(name: "", method: kind)
                reference.beta = nil
                return plain == reference
            }
            let points = entries.compactMap { m -> (x: Double, y: Double, s: Double)? in
                guard let b = beta(m), b > 0, let e = report.entries[pair.label]?[m.name] else { return nil }
                return (Double(b), e.best.mean, e.best.std)
            }.sorted { $0.x < $1.x }
            guard Set(points.map(\.x)).count >= 2 else { return nil }
            return SVGChart.Series(label: kind, points: points.map { ($0.x, $0.y) }, spread: points.map(\.s))
        }
    }

    /// MMKD entries that switch off one part (the paper's Figure 5), after the full one.
    func ablations(pair: ExperimentSpec.Pair) -> [(label: String, value: Double, spread: Double)] {
        var out: [(String, Double, Double)] = []
        for m in spec.methods where m.method == DistillationMethods.proposed.name {
            var tags: [String] = []
            if m.buffer == false { tags.append("no hard buffer") }
            if m.logitWeights == false { tags.append("no logit weights") }
            if m.featureWeights == false { tags.append("no feature weights") }
            if m.featureLoss == false { tags.append("no feature loss") }
            guard tags.count <= 1, let e = report.entries[pair.label]?[m.name] else { continue }
            if tags.isEmpty && out.contains(where: { $0.0 == "MMKD (full)" }) { continue }
            out.append((tags.first ?? "MMKD (full)", e.best.mean, e.best.std))
        }
        return out.count >= 2 ? out : []
    }

    /// The page; `gradcam` is the path of a Grad-CAM figure (PNG) to embed, if any.
    public func html(gradcam: [String: URL] = [:]) -> String {
        let esc = SVGChart.escape
        var body = "<h1>\(esc(spec.name))</h1>\n"
        body += "<p>Data <code>\(esc(spec.data))</code>; \(spec.budget.epochs) epochs\(spec.budget.trainLimit.map { " of \($0) training images" } ?? "")\(spec.budget.testLimit.map { ", tested on \($0) test images spread evenly over the test set" } ?? ""); seeds \(spec.seeds.map(String.init).joined(separator: ", ")); \(report.finished) of \(report.planned) runs finished. Top-1 (%) on the test split, mean ± sample standard deviation over seeds.</p>\n"
        body += markdownTables(report.markdown())
        for pair in spec.pairs {
            body += "<h2>\(esc(pair.teachers.joined(separator: ", "))) → \(esc(pair.student))</h2>\n<div class=\"charts\">"
            let curves = spec.methods.compactMap { curve(pair: pair, method: $0) { $0["test_top1"] as? Double } }
            body += SVGChart.lines(curves, title: "Test top-1 per epoch", xLabel: "epoch", yLabel: "top-1 (%)")
            if let mmkd = report.mmkdMethod {
                for (key, what) in [("logit_weight_mean", "logit"), ("feature_weight_mean", "feature")] {
                    let teachers = pair.teachers.indices.compactMap { k in
                        curve(pair: pair, method: mmkd) { ($0[key] as? [Double]).flatMap { k < $0.count ? $0[k] : nil } }
                            .map { SVGChart.Series(label: pair.teachers[k], points: $0.points, spread: $0.spread) }
                    }
                    if !teachers.isEmpty {
                        body += SVGChart.lines(teachers, title: "\(mmkd.name): learned \(what) weight per teacher", xLabel: "epoch", yLabel: "mean weight over samples")
                    }
                }
            }
            let sweeps = betaSweeps(pair: pair)
            body += sweeps.isEmpty ? "<p class=\"note\">No β sweep in this grid (add mmkd/aver entries that differ only in <code>beta</code>).</p>"
                : SVGChart.lines(sweeps, title: "Sensitivity to β (best epoch)", xLabel: "β", yLabel: "top-1 (%)", logX: true)
            let bars = ablations(pair: pair)
            body += bars.isEmpty ? "<p class=\"note\">No ablations in this grid (mmkd entries with <code>buffer: false</code>, <code>logit_weights: false</code>, <code>feature_weights: false</code> or <code>feature_loss: false</code>).</p>"
                : SVGChart.bars(bars, title: "MMKD ablations (best epoch)", yLabel: "top-1 (%)")
            body += "</div>\n"
            if let png = gradcam[pair.label] {
                // The labelled figure (SVG) when it was written, else the bare grid.
                let svg = png.deletingLastPathComponent().appendingPathComponent("gradcam.svg")
                let (data, type) = (try? Data(contentsOf: svg)).map { ($0, "svg+xml") } ?? ((try? Data(contentsOf: png)) ?? Data(), "png")
                body += "<h3>Grad-CAM (true class), test images</h3><p>Columns: the image, then \(esc(GradCAMFigure.columnsNote(png)))</p>"
                body += "<img class=\"gradcam\" alt=\"Grad-CAM heat maps\" src=\"data:image/\(type);base64,\(data.base64EncodedString())\"/>\n"
            }
        }
        let style = """
        body{font-family:sans-serif;max-width:1200px;margin:24px auto;color:#222} table{border-collapse:collapse;margin:8px 0 20px}
        td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} td:first-child,th:first-child{text-align:left}
        .charts{display:flex;flex-wrap:wrap;gap:12px} .note{color:#777;font-size:13px;width:560px} img.gradcam{image-rendering:pixelated;max-width:100%}
        """
        return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>\(esc(spec.name))</title><style>\(style)</style></head><body>\n\(body)</body></html>\n"
    }

    /// The Markdown tables of the report as HTML (headings, paragraphs and pipe tables).
    func markdownTables(_ markdown: String) -> String {
        var out = "", inTable = false
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("|") {
                let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast().map { $0.trimmingCharacters(in: .whitespaces) }
                if cells.allSatisfy({ $0.allSatisfy { "-:".contains($0) } }) { continue }
                if !inTable { out += "<table>"; inTable = true; out += "<tr>" + cells.map { "<th>\(SVGChart.escape($0))</th>" }.joined() + "</tr>"; continue }
                out += "<tr>" + cells.map { "<td>\(SVGChart.escape($0))</td>" }.joined() + "</tr>"
                continue
            }
            if inTable { out += "</table>\n"; inTable = false }
            if line.hasPrefix("## ") { out += "<h2>\(SVGChart.escape(String(line.dropFirst(3))))</h2>\n" }
            else if !line.isEmpty && !line.hasPrefix("# ") && !line.hasPrefix("Data ") { out += "<p>\(SVGChart.escape(line))</p>\n" }
        }
        return out + (inTable ? "</table>\n" : "")
    }

    /// Writes `report.html` into the experiment's folder.
    @discardableResult
    public func write(gradcam: [String: URL] = [:]) throws -> URL {
        let run = try RunDirectory(report.output.path)
        try run.writeText(html(gradcam: gradcam), to: "report.html")
        return run.file("report.html")
    }
}

extension GradCAMFigure {
    /// The column labels stored next to a written grid (`gradcam.txt`).
    static func columnsNote(_ png: URL) -> String {
        (try? String(contentsOf: png.deletingLastPathComponent().appendingPathComponent("gradcam.txt"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "each network"
    }
}
