import Distillation
import Foundation

/// The aggregate of an experiment's finished cells: per pair and method, top-1 over seeds at the
/// best and at the last epoch (mean ± sample standard deviation), the student trained alone, the
/// teachers and their ensemble, and the paper's ARI of MMKD against every other method.
public struct ExperimentReport {
    public let spec: ExperimentSpec
    public let output: URL

    /// Mean and sample standard deviation (0 for one value) of some seeds' accuracies.
    public struct Statistic: Equatable, Sendable {
        public var values: [Double]
        public var mean: Double { values.reduce(0, +) / Double(max(values.count, 1)) }
        public var std: Double {
            guard values.count > 1 else { return 0 }
            let m = mean
            return (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
        }
        public var text: String { values.isEmpty ? "–" : String(format: "%.2f ± %.2f", mean, std) }
    }

    /// Best-epoch and last-epoch accuracy of one (pair, method) over its finished seeds.
    public struct Entry: Equatable, Sendable {
        public var best: Statistic
        public var last: Statistic
        public var seeds: [UInt64]
    }

    /// Which epoch's accuracy a table or ARI uses.
    public enum Epoch: String, CaseIterable, Sendable { case best, last }

    /// Entries by pair label, then method name (the student alone under `alone`).
    public private(set) var entries: [String: [String: Entry]] = [:]
    /// Per pair: each teacher's and the ensemble's test top-1 (from the pair's teacher evaluation).
    public private(set) var teachers: [String: TeacherEvaluation] = [:]
    /// Per cell path, its metrics lines (for curves and teacher weights).
    public private(set) var metrics: [String: [[String: Any]]] = [:]
    /// Cells finished / planned.
    public private(set) var finished = 0, planned = 0

    /// Reads an experiment's output folder (written by `ExperimentRunner`).
    public init(output path: String) throws {
        output = URL(fileURLWithPath: path)
        let specURL = output.appendingPathComponent("experiment.json")
        guard let data = try? Data(contentsOf: specURL) else {
            throw ExperimentError.missingRun("\(path): no experiment.json; is this the output folder of `mmkd run`?")
        }
        do { spec = try JSONDecoder().decode(ExperimentSpec.self, from: data) } catch {
            throw ExperimentError.invalid("\(specURL.path): not an experiment description (\(error))")
        }
        let cells = spec.cells()
        planned = cells.count
        var results: [String: ExperimentCell.Result] = [:]
        for cell in cells {
            let dir = output.appendingPathComponent(cell.path)
            guard let r = try? JSONDecoder().decode(ExperimentCell.Result.self, from: Data(contentsOf: dir.appendingPathComponent("result.json"))) else { continue }
            results[cell.path] = r
            finished += 1
            metrics[cell.path] = (try? RunDirectory(dir.path))?.metrics() ?? []
            if case let .distill(pair, _, _) = cell.kind, teachers[pair.label] == nil,
               let t = try? JSONDecoder().decode(TeacherEvaluation.self, from: Data(contentsOf: dir.appendingPathComponent("teachers.json"))) {
                teachers[pair.label] = t
            }
        }
        for pair in spec.pairs {
            var row: [String: Entry] = [:]
            for m in spec.methods {
                let found = spec.seeds.compactMap { seed -> ExperimentCell.Result? in
                    results[spec.cellPath(pair: pair, method: m, seed: seed)]
                }
                if !found.isEmpty {
                    row[m.name] = Entry(best: Statistic(values: found.map(\.bestTop1)), last: Statistic(values: found.map(\.lastTop1)), seeds: found.map(\.seed))
                }
            }
            entries[pair.label] = row
        }
    }

    /// The method entry MMKD's ARI is computed for: the one named `mmkd`, else the first MMKD entry.
    public var mmkdMethod: ExperimentSpec.Method? {
        let mmkd = DistillationMethods.proposed.name
        return spec.methods.first { $0.method == mmkd && $0.name == mmkd } ?? spec.methods.first { $0.method == mmkd }
    }

    /// The name of the student-alone entry, if the grid has one.
    public var aloneMethod: String? { spec.methods.first { $0.isAlone }?.name }

    /// ARI (percent) of MMKD against `other`: the mean over pairs of (MMKD − other)/(other − student
    /// alone), over the pairs where all three have results; nil where none has.
    public func ari(against other: String, epoch: Epoch) -> Double? {
        guard let mmkd = mmkdMethod?.name, let alone = aloneMethod else { return nil }
        func acc(_ e: Entry?) -> Double? { e.map { epoch == .best ? $0.best.mean : $0.last.mean } }
        let terms = spec.pairs.compactMap { pair -> Double? in
            let row = entries[pair.label] ?? [:]
            guard let a = acc(row[mmkd]), let o = acc(row[other]), let s = acc(row[alone]), o != s else { return nil }
            return (a - o) / (o - s)
        }
        return terms.isEmpty ? nil : 100 * terms.reduce(0, +) / Double(terms.count)
    }

    // MARK: Tables

    /// The paper's Table I shape: a column per pair, a row per method, one table per epoch choice,
    /// then the ARI of MMKD against each other method.
    public func markdown() -> String {
        var text = "# \(spec.name)\n\n"
        text += "Data `\(spec.data)`; \(spec.budget.epochs) epochs\(spec.budget.trainLimit.map { " of \($0) training images" } ?? "")\(spec.budget.testLimit.map { ", tested on \($0) test images spread evenly over the test set" } ?? ""), seeds \(spec.seeds.map(String.init).joined(separator: ", ")); "
        text += "\(finished) of \(planned) runs finished. Top-1 (%) on the test split, mean ± sample standard deviation over seeds.\n\n"
        let pairs = spec.pairs
        for epoch in Epoch.allCases {
            text += epoch == .best ? "## Top-1 at the best epoch\n\n" : "## Top-1 at the last epoch\n\n"
            text += "| method | " + pairs.map { "\($0.teachers.joined(separator: ", ")) → \($0.student)" }.joined(separator: " | ") + " |\n"
            text += "|---|" + pairs.map { _ in "---:" }.joined(separator: "|") + "|\n"
            text += "| teachers (each) | " + pairs.map { p in teachers[p.label].map { $0.teachers.map { String(format: "%.2f", $0.top1) }.joined(separator: " / ") } ?? "–" }.joined(separator: " | ") + " |\n"
            text += "| teacher ensemble | " + pairs.map { p in teachers[p.label].map { String(format: "%.2f", $0.ensemble.top1) } ?? "–" }.joined(separator: " | ") + " |\n"
            for m in spec.methods {
                let label = m.isAlone ? "student alone" : m.name
                text += "| \(label) | " + pairs.map { p in
                    guard let e = entries[p.label]?[m.name] else { return "–" }
                    return (epoch == .best ? e.best : e.last).text
                }.joined(separator: " | ") + " |\n"
            }
            text += "\n"
        }
        if let mmkd = mmkdMethod {
            let others = spec.methods.filter { !$0.isAlone && $0.name != mmkd.name }
            if !others.isEmpty {
                text += "## ARI of \(mmkd.name) (%)\n\n"
                text += "ARI = mean over pairs of (Acc_MMKD − Acc_other) / (Acc_other − Acc_student alone), in percent; positive: MMKD closes more of the gap to the student alone than that method improves on it.\n\n"
                text += "| against | ARI, best epoch | ARI, last epoch |\n|---|---:|---:|\n"
                for o in others {
                    text += "| \(o.name) | " + Epoch.allCases.map { e in ari(against: o.name, epoch: e).map { String(format: "%.2f", $0) } ?? "–" }.joined(separator: " | ") + " |\n"
                }
                text += "\n"
            }
        }
        return text
    }

    /// One line per (pair, method): the statistics at both epochs, seeds and the ARI.
    public func csv() -> String {
        var text = "pair,student,teachers,method,kind,seeds,best_mean,best_std,last_mean,last_std,teacher_ensemble,ari_best,ari_last\n"
        for p in spec.pairs {
            for m in spec.methods {
                guard let e = entries[p.label]?[m.name] else { continue }
                let ensemble = teachers[p.label].map { String(format: "%.4f", $0.ensemble.top1) } ?? ""
                let ariFields = Epoch.allCases.map { epoch in
                    m.name == mmkdMethod?.name || m.isAlone ? "" : ari(against: m.name, epoch: epoch).map { String(format: "%.4f", $0) } ?? ""
                }
                let fields = [p.label, p.student, p.teachers.joined(separator: "+"), m.name, m.method, e.seeds.map(String.init).joined(separator: "+"),
                              String(format: "%.4f", e.best.mean), String(format: "%.4f", e.best.std),
                              String(format: "%.4f", e.last.mean), String(format: "%.4f", e.last.std), ensemble] + ariFields
                text += fields.map { $0.contains(",") ? "\"\($0)\"" : $0 }.joined(separator: ",") + "\n"
            }
        }
        return text
    }

    /// Writes `report.md` and `results.csv` into the output folder; returns their paths.
    @discardableResult
    public func write() throws -> [URL] {
        let run = try RunDirectory(output.path)
        try run.writeText(markdown(), to: "report.md")
        try run.writeText(csv(), to: "results.csv")
        return [run.file("report.md"), run.file("results.csv")]
    }
}
