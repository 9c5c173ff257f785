import Checkpoints
import Datasets
import Engine
import Foundation
import Models

/// The paper's Figure 3: Grad-CAM heat maps of several networks (the student alone, distilled
/// students, a teacher) on the same test images, explaining each image's true class.
public struct GradCAMFigure {
    /// A network to explain: a label for the figure, its architecture and checkpoint.
    public struct Network: Sendable, Equatable {
        public var label: String, arch: String, checkpoint: String
        public init(label: String, arch: String, checkpoint: String) { self.label = label; self.arch = arch; self.checkpoint = checkpoint }

        /// Parses `LABEL=ARCH=CHECKPOINT`.
        public init(parsing text: String) throws {
            let parts = text.split(separator: "=", maxSplits: 2).map(String.init)
            guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else {
                throw ExperimentError.invalid("--model '\(text)': expected LABEL=ARCH=CHECKPOINT (e.g. mmkd=resnet8=runs/x/best.safetensors)")
            }
            self.init(label: parts[0], arch: parts[1], checkpoint: parts[2])
        }
    }

    public let networks: [Network]
    /// Test images shown (indices into the test split) and their labels.
    public let indices: [Int]
    public let labels: [Int]
    /// The original images, and per network its overlays, in `indices` order.
    public let originals: [Image]
    public let overlays: [[Image]]

    /// Explains `count` test images of `data`, spread evenly over the split.
    public init(networks: [Network], data: String, count: Int) throws {
        guard !networks.isEmpty else { throw ExperimentError.invalid("Grad-CAM: give at least one network") }
        guard count > 0 else { throw ExperimentError.invalid("Grad-CAM: the number of images must be positive, got \(count)") }
        let spec = try DatasetSpec(parsing: data)
        let (_, test) = try spec.load()
        let pipeline = spec.pipeline(train: false)
        let n = min(count, test.count)
        let indices = (0..<n).map { $0 * test.count / n }
        let labels = indices.map { test.label(at: $0) }
        let originals = try indices.map { try test.image(at: $0) }
        let (w, h) = pipeline.outputSize(width: originals[0].width, height: originals[0].height)
        var g = RandomGenerator(seed: 0)
        let batch = Tensor.make([n, pipeline.channels, h, w]) { p, _ in
            for (i, im) in originals.enumerated() { pipeline.apply(im, generator: &g, into: p + i * pipeline.channels * h * w) }
        }
        let shown = originals.map { $0.resized(cropX: 0, cropY: 0, cropWidth: $0.width, cropHeight: $0.height, width: w, height: h) }
        self.overlays = try networks.map { net in
            let model = try ModelZoo.make(net.arch, classes: test.classCount)
            guard FileManager.default.fileExists(atPath: net.checkpoint) else { throw CheckpointError.missing(path: net.checkpoint) }
            try ModelCheckpoint.load(URL(fileURLWithPath: net.checkpoint), into: model)
            let maps = GradCAM.maps(model: model, batch: batch, classes: labels)
            return zip(shown, maps).map { GradCAM.overlay($0, map: $1) }
        }
        self.indices = indices
        self.labels = labels
        self.originals = originals
        self.networks = networks
    }

    /// One row per image: the original, then each network's overlay.
    public func grid() -> Image {
        GradCAM.column(indices.indices.map { i in
            GradCAM.row([originals[i].resized(cropX: 0, cropY: 0, cropWidth: originals[i].width, cropHeight: originals[i].height,
                                              width: overlays[0][i].width, height: overlays[0][i].height)] + overlays.map { $0[i] })
        })
    }

    /// Writes `gradcam.png` (the grid), `gradcam.svg` (the grid under its column labels),
    /// `gradcam.txt` (the labels) and one PNG per network and image (`LABEL-testINDEX.png`, the label
    /// with anything but letters, digits, `.`, `_` and `-` as `-`) into `folder`; returns the grid's path.
    @discardableResult
    public func write(to folder: String) throws -> URL {
        let dir = URL(fileURLWithPath: folder)
        try AtomicFile.makeDirectory(dir.path)
        for (net, images) in zip(networks, overlays) {
            for (i, im) in zip(indices, images) {
                try AtomicFile.write(Data(try ImageCodecs.encodePNG(im)), to: dir.appendingPathComponent("\(Self.fileName(net.label))-test\(i).png"))
            }
        }
        let url = dir.appendingPathComponent("gradcam.png")
        let grid = grid()
        let png = try ImageCodecs.encodePNG(grid)
        try AtomicFile.write(Data(png), to: url)
        try AtomicFile.write(Data(labelledSVG(png: png, width: grid.width, height: grid.height).utf8), to: dir.appendingPathComponent("gradcam.svg"))
        try AtomicFile.write(Data(networks.map(\.label).joined(separator: ", ").utf8), to: dir.appendingPathComponent("gradcam.txt"))
        return url
    }

    /// The column titles: the image, then each network.
    public var columnLabels: [String] { ["test image"] + networks.map(\.label) }

    /// The grid (PNG bytes of `width` × `height`) under a row of column titles, scaled 3× without
    /// smoothing, as SVG.
    func labelledSVG(png: [UInt8], width: Int, height: Int) -> String {
        let scale = 3, header = 28
        let columns = columnLabels.count, cell = width * scale / max(columns, 1)
        func esc(_ s: String) -> String { s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;") }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width * scale)\" height=\"\(height * scale + header)\" font-family=\"sans-serif\" font-size=\"13\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        for (c, label) in columnLabels.enumerated() {
            svg += "<text x=\"\(c * cell + cell / 2)\" y=\"\(header - 9)\" text-anchor=\"middle\">\(esc(label))</text>\n"
        }
        svg += "<image x=\"0\" y=\"\(header)\" width=\"\(width * scale)\" height=\"\(height * scale)\" style=\"image-rendering:pixelated\" "
        svg += "href=\"data:image/png;base64,\(Data(png).base64EncodedString())\"/>\n</svg>\n"
        return svg
    }

    /// `label` as a file name without spaces or separators.
    static func fileName(_ label: String) -> String {
        String(label.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "-" })
    }
}

extension ExperimentReport {
    /// The networks of a pair's Grad-CAM figure: the student alone, each distilled student (the
    /// first finished seed's best epoch) and the pair's first teacher.
    public func gradCAMNetworks(pair: ExperimentSpec.Pair) -> [GradCAMFigure.Network] {
        var out: [GradCAMFigure.Network] = []
        for m in spec.methods {
            for seed in spec.seeds {
                let path = output.appendingPathComponent(spec.cellPath(pair: pair, method: m, seed: seed))
                guard FileManager.default.fileExists(atPath: path.appendingPathComponent("result.json").path) else { continue }
                // The best epoch (a run whose accuracy never rose above 0 kept only its last).
                let best = path.appendingPathComponent("best.safetensors").path
                let checkpoint = FileManager.default.fileExists(atPath: best) ? best : path.appendingPathComponent("last.safetensors").path
                out.append(.init(label: m.isAlone ? "student alone" : m.name, arch: pair.student, checkpoint: checkpoint))
                break
            }
        }
        if let t = spec.teachers.first(where: { $0.name == pair.teachers[0] }) {
            let checkpoint = spec.checkpoint(of: t, output: output)
            if FileManager.default.fileExists(atPath: checkpoint) { out.append(.init(label: "teacher \(t.name)", arch: t.arch, checkpoint: checkpoint)) }
        }
        return out
    }

    /// Writes each pair's Grad-CAM figure under `figures/PAIR/` (`images` test images); returns
    /// the grids by pair.
    public func writeGradCAMFigures(images: Int) throws -> [String: URL] {
        var out: [String: URL] = [:]
        for pair in spec.pairs {
            let networks = gradCAMNetworks(pair: pair)
            guard !networks.isEmpty else { continue }
            out[pair.label] = try GradCAMFigure(networks: networks, data: spec.data, count: images)
                .write(to: output.appendingPathComponent("figures/\(pair.label)").path)
        }
        return out
    }
}
