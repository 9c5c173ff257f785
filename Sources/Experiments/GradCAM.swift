import Datasets
import Engine
import Foundation
import Models

/// Grad-CAM (Selvaraju et al. 2017) on a model's penultimate feature map A (the last spatial map,
/// as the paper's Figure 3): α_c = spatial mean of ∂y_c/∂A_c for the class y (the label, or the
/// prediction), map = ReLU(Σ_c α_c·A_c), bilinearly resized to the image and scaled to [0, 1].
public enum GradCAM {
    /// One heat map per image of `batch` (shape [N, 3, H, W], normalised as the model expects),
    /// each `H`×`W` values in [0, 1] row-major; `classes[i]` is the class explained for image i.
    public static func maps(model: any FeatureClassifier, batch: Tensor, classes: [Int]) -> [[Float]] {
        precondition(batch.rank == 4 && classes.count == batch.shape[0], "GradCAM: \(classes.count) classes for a batch of shape \(batch.shape)")
        model.eval()
        let features = withoutGrad { model.features(batch).features }
        let a = features[features.count - 2].detached().requiringGrad()
        let logits = model.classify(penultimate: a)
        let selected = (logits * Tensor.oneHot(classes, classes: logits.shape[1])).sum()
        let g = gradients(of: selected, wrt: [a])[0]
        let (n, c, h, w) = (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
        let (outH, outW) = (batch.shape[2], batch.shape[3])
        let av = a.detached().scalars, gv = g.scalars
        return (0..<n).map { i in
            var cam = [Float](repeating: 0, count: h * w)
            for ch in 0..<c {
                let base = (i * c + ch) * h * w
                var alpha: Float = 0
                for p in 0..<(h * w) { alpha += gv[base + p] }
                alpha /= Float(h * w)
                for p in 0..<(h * w) { cam[p] += alpha * av[base + p] }
            }
            cam = cam.map { max($0, 0) }
            let resized = resize(cam, height: h, width: w, toHeight: outH, toWidth: outW)
            let top = resized.max() ?? 0
            return top > 0 ? resized.map { $0 / top } : resized
        }
    }

    /// Bilinear resize with aligned pixel centres (as `F.interpolate(..., align_corners=False)`).
    static func resize(_ v: [Float], height h: Int, width w: Int, toHeight oh: Int, toWidth ow: Int) -> [Float] {
        var out = [Float](repeating: 0, count: oh * ow)
        for y in 0..<oh {
            let fy = min(max((Float(y) + 0.5) * Float(h) / Float(oh) - 0.5, 0), Float(h - 1))
            let y0 = Int(fy), y1 = min(y0 + 1, h - 1), wy = fy - Float(y0)
            for x in 0..<ow {
                let fx = min(max((Float(x) + 0.5) * Float(w) / Float(ow) - 0.5, 0), Float(w - 1))
                let x0 = Int(fx), x1 = min(x0 + 1, w - 1), wx = fx - Float(x0)
                out[y * ow + x] = (v[y0 * w + x0] * (1 - wx) + v[y0 * w + x1] * wx) * (1 - wy) + (v[y1 * w + x0] * (1 - wx) + v[y1 * w + x1] * wx) * wy
            }
        }
        return out
    }

    /// `image` with `map` (values in [0, 1], the image's size) blended over it in a jet-like colour
    /// scale, scaled up by `scale` (nearest neighbour) for viewing.
    public static func overlay(_ image: Image, map: [Float], opacity: Float = 0.5, scale: Int = 4) -> Image {
        let rgb = image.rgb()
        precondition(map.count == rgb.width * rgb.height, "GradCAM.overlay: map of \(map.count) values for a \(rgb.width)×\(rgb.height) image")
        let (w, h) = (rgb.width * scale, rgb.height * scale)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let p = (y / scale) * rgb.width + x / scale
                let colour = jet(map[p])
                for ch in 0..<3 {
                    let v = (1 - opacity) * Float(rgb.pixels[p * 3 + ch]) + opacity * colour[ch]
                    pixels[(y * w + x) * 3 + ch] = UInt8(min(max(v.rounded(), 0), 255))
                }
            }
        }
        return Image(width: w, height: h, channels: 3, pixels: pixels)
    }

    /// Blue (0) → cyan → yellow → red (1).
    static func jet(_ t: Float) -> [Float] {
        let v = min(max(t, 0), 1)
        func ramp(_ x: Float) -> Float { 255 * min(max(1.5 - abs(4 * v - x), 0), 1) }
        return [ramp(3), ramp(2), ramp(1)]
    }

    /// Images side by side with a gap (a row of a figure), on white.
    public static func row(_ images: [Image], gap: Int = 4) -> Image {
        paste(images, horizontal: true, gap: gap)
    }

    /// Images stacked with a gap, on white.
    public static func column(_ rows: [Image], gap: Int = 4) -> Image {
        paste(rows, horizontal: false, gap: gap)
    }

    static func paste(_ images: [Image], horizontal: Bool, gap: Int) -> Image {
        let along = images.map { horizontal ? $0.width : $0.height }.reduce(0, +) + gap * max(images.count - 1, 0)
        let across = images.map { horizontal ? $0.height : $0.width }.max() ?? 0
        let (w, h) = horizontal ? (along, across) : (across, along)
        var pixels = [UInt8](repeating: 255, count: w * h * 3)
        var offset = 0
        for im in images.map({ $0.rgb() }) {
            let (ox, oy) = horizontal ? (offset, 0) : (0, offset)
            for y in 0..<im.height { for x in 0..<im.width { for c in 0..<3 { pixels[((oy + y) * w + ox + x) * 3 + c] = im.pixels[(y * im.width + x) * 3 + c] } } }
            offset += (horizontal ? im.width : im.height) + gap
        }
        return Image(width: w, height: h, channels: 3, pixels: pixels)
    }
}
