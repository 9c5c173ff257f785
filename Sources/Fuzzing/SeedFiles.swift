import CImageCodecs
import Checkpoints
import Datasets
import Engine
import Foundation

/// Small valid files of each format, written byte by byte as their producers lay them out: the seed
/// corpus of the fuzzers (`mmkd-fuzz seeds DIR`) and the inputs of the format tests.
package enum SeedFiles {
    // MARK: CIFAR python batches

    /// A pickled {'fine_labels'/'labels': [...], 'data': numpy uint8 array N×3072}, as Python's
    /// pickle (protocol 2) writes CIFAR's python batches.
    package static func cifarPickle(labels: [Int], labelKey: String, pixels: [UInt8], count: Int) -> [UInt8] {
        func str(_ s: String) -> [UInt8] { [0x8C, UInt8(s.utf8.count)] + Array(s.utf8) }
        func int(_ i: Int) -> [UInt8] { i < 256 ? [0x4B, UInt8(i)] : [0x4D, UInt8(i & 0xFF), UInt8(i >> 8)] }
        func global(_ m: String, _ n: String) -> [UInt8] { [0x63] + Array("\(m)\n\(n)\n".utf8) }
        var p: [UInt8] = [0x80, 0x02, 0x7D, 0x28]                                   // PROTO 2, {}, MARK
        p += str(labelKey) + [0x5D, 0x28] + labels.flatMap(int) + [0x65]            // key, [labels]
        p += str("data") + global("numpy.core.multiarray", "_reconstruct") + global("numpy", "ndarray")
        p += int(0) + [0x85] + [0x43, 1, 0x62] + [0x87, 0x52]                       // (ndarray, (0,), b'b') REDUCE
        p += [0x28] + int(1) + int(count) + int(3072) + [0x86]                       // (1, (N, 3072),
        p += global("numpy", "dtype") + str("u1") + [0x89, 0x88, 0x87, 0x52]         //  dtype('u1', False, True)
        p += [0x28] + int(3) + str("|") + [0x4E, 0x4E, 0x4E, 0x4A, 0xFF, 0xFF, 0xFF, 0xFF, 0x4A, 0xFF, 0xFF, 0xFF, 0xFF] + int(0) + [0x74, 0x62]
        let n = pixels.count
        p += [0x89, 0x42, UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)] + pixels  // False, bytes
        p += [0x74, 0x62]                                                           // ) BUILD
        p += [0x75, 0x2E]                                                           // SETITEMS STOP
        return p
    }

    // MARK: MATLAB v5 (Stanford Dogs' lists)

    static func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }

    /// A MAT data element: type, byte count, data padded to 8 bytes.
    package static func matElement(_ type: Int, _ data: [UInt8]) -> [UInt8] {
        le32(type) + le32(data.count) + data + [UInt8](repeating: 0, count: (8 - data.count % 8) % 8)
    }

    /// An miMATRIX element: flags (class), dimensions, name, then `payload`.
    package static func matMatrix(_ name: String, classID: Int, dims: [Int], _ payload: [UInt8]) -> [UInt8] {
        matElement(14, matElement(6, le32(classID) + le32(0)) + matElement(5, dims.flatMap(le32)) + matElement(1, Array(name.utf8)) + payload)
    }

    /// A 1 × n char matrix in UTF-16.
    package static func matText(_ s: String) -> [UInt8] {
        matMatrix("", classID: 4, dims: [1, s.utf16.count], matElement(4, s.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }))
    }

    /// An miCOMPRESSED element holding `bytes` (zlib).
    package static func matCompressed(_ bytes: [UInt8]) -> [UInt8] {
        var size = compressBound(UInt(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        _ = compress(&out, &size, bytes, UInt(bytes.count))
        return le32(15) + le32(Int(size)) + Array(out.prefix(Int(size)))
    }

    /// A Stanford Dogs list: `file_list` (a cell of paths, compressed) and `labels` (uint8-stored doubles).
    package static func stanfordDogsList(files: [String], labels: [UInt8]) -> [UInt8] {
        let header = Array("MATLAB 5.0 MAT-file, written by a test".utf8) + [UInt8](repeating: 0x20, count: 116 - 38) + [UInt8](repeating: 0, count: 8) + [0x00, 0x01] + Array("IM".utf8)
        let fileList = matMatrix("file_list", classID: 1, dims: [files.count, 1], files.flatMap(matText))
        // Labels are doubles stored as uint8, as MATLAB saves small integers.
        let labelMatrix = matMatrix("labels", classID: 6, dims: [labels.count, 1], matElement(2, labels))
        return header + matCompressed(fileList) + labelMatrix
    }

    // MARK: IDX

    /// An IDX file of unsigned bytes with big-endian dimensions.
    package static func idx(_ dims: [Int], _ payload: [UInt8]) -> [UInt8] {
        [0, 0, 8, UInt8(dims.count)] + dims.flatMap { d in (0..<4).map { UInt8((d >> (8 * (3 - $0))) & 0xFF) } } + payload
    }

    /// `bytes` as a one-member gzip file (zlib's deflate with a gzip wrapper, as `gzip` writes).
    package static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        _ = deflateInit2_(&stream, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(bytes.count))) + 32)
        var input = bytes
        let written = input.withUnsafeMutableBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst -> Int in
                stream.next_in = src.baseAddress; stream.avail_in = UInt32(src.count)
                stream.next_out = dst.baseAddress; stream.avail_out = UInt32(dst.count)
                _ = deflate(&stream, Z_FINISH)
                return dst.count - Int(stream.avail_out)
            }
        }
        return Array(out.prefix(written))
    }

    // MARK: PyTorch checkpoints

    /// A tensor entry of a `torch.save` state dict: its storage (key and Float32 values) and the
    /// view of it (offset, sizes, strides), any of which a test may set to hostile values.
    package struct TorchTensor {
        package var name: String
        package var storage: String
        package var values: [Float]
        package var offset: Int
        package var size: [Int]
        package var stride: [Int]

        package init(name: String, storage: String, values: [Float], offset: Int = 0, size: [Int], stride: [Int]) {
            self.name = name; self.storage = storage; self.values = values
            self.offset = offset; self.size = size; self.stride = stride
        }
    }

    /// A `torch.save` file (ZIP of `archive/data.pkl`, pickle protocol 2, and one stored entry per
    /// storage) holding a bare state dict of `tensors`.
    package static func torchCheckpoint(_ tensors: [TorchTensor]) -> [UInt8] {
        func str(_ s: String) -> [UInt8] { [0x58] + le32(s.utf8.count) + Array(s.utf8) }
        func int(_ i: Int) -> [UInt8] { [0x8A, 8] + (0..<8).map { UInt8(truncatingIfNeeded: i >> (8 * $0)) } }  // LONG1
        func global(_ m: String, _ n: String) -> [UInt8] { [0x63] + Array("\(m)\n\(n)\n".utf8) }
        var pickle: [UInt8] = [0x80, 0x02, 0x7D, 0x28]                                  // PROTO 2, {}, MARK
        var storages: [String: [Float]] = [:]
        for t in tensors {
            storages[t.storage] = t.values
            pickle += str(t.name) + global("torch._utils", "_rebuild_tensor_v2") + [0x28]
            pickle += [0x28] + str("storage") + global("torch", "FloatStorage") + str(t.storage) + str("cpu") + int(t.values.count) + [0x74, 0x51]
            pickle += int(t.offset) + [0x28] + t.size.flatMap(int) + [0x74] + [0x28] + t.stride.flatMap(int) + [0x74]
            pickle += [0x89] + global("collections", "OrderedDict") + [0x29, 0x52]          // False, OrderedDict()
            pickle += [0x74, 0x52]                                                          // ) REDUCE
        }
        pickle += [0x75, 0x2E]                                                              // SETITEMS STOP
        var entries = [("archive/data.pkl", pickle)]
        for (key, values) in storages.sorted(by: { $0.key < $1.key }) {
            entries.append(("archive/data/\(key)", values.withUnsafeBytes { Array($0) }))
        }
        return zip(entries)
    }

    /// A ZIP archive of stored (uncompressed) entries.
    package static func zip(_ entries: [(String, [UInt8])]) -> [UInt8] {
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        var out: [UInt8] = [], central: [UInt8] = []
        for (name, data) in entries {
            let crc = Int(data.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) })
            let fields = le16(0) + le16(0) + le16(0) + le16(0) + le32(crc) + le32(data.count) + le32(data.count) + le16(name.utf8.count) + le16(0)
            central += le32(0x0201_4B50) + le16(20) + le16(20) + fields + le16(0) + le16(0) + le16(0) + le32(0) + le32(out.count) + Array(name.utf8)
            out += le32(0x0403_4B50) + le16(20) + fields + Array(name.utf8) + data
        }
        let start = out.count
        return out + central + le32(0x0605_4B50) + le16(0) + le16(0) + le16(entries.count) + le16(entries.count)
            + le32(central.count) + le32(start) + le16(0)
    }

    // MARK: The seed corpus

    /// Seeds per harness name: file name → bytes. Formats with no writer here (PyTorch's `.pth`, the
    /// example experiments) are copied from the repository by `scripts/make_fuzz_seeds.sh`.
    package static func corpus() throws -> [String: [String: [UInt8]]] {
        let tensors: [(String, Tensor)] = [
            ("conv.weight", Tensor((0..<8).map { Float($0) / 8 }, shape: [2, 1, 2, 2])),
            ("bn.num_batches_tracked", Tensor([3], shape: [])),
        ]
        let record = { (label: [UInt8]) in label + (0..<3072).map { UInt8(truncatingIfNeeded: $0 * 7) } }
        let pixels = (0..<(8 * 8 * 3)).map { UInt8(truncatingIfNeeded: $0 * 5) }
        let rgb = Image(width: 8, height: 8, channels: 3, pixels: pixels)
        let grey = Image(width: 8, height: 8, channels: 1, pixels: Array(pixels.prefix(64)))
        let images = (0..<(2 * 3 * 3)).map { UInt8($0 * 13) }
        return [
            "safetensors": [
                "two-tensors.safetensors": [UInt8](try SafeTensors.encoded(tensors, metadata: ["arch": "resnet8"])),
            ],
            "idx": [
                "images.idx": idx([2, 3, 3], images),
                "labels.idx": idx([2], [1, 9]),
                "images.idx.gz": gzip(idx([2, 3, 3], images)),
            ],
            "pth": ["views.pth": torchCheckpoint([
                TorchTensor(name: "fc.weight", storage: "0", values: (0..<6).map(Float.init), size: [2, 3], stride: [3, 1]),
                TorchTensor(name: "fc.weight_t", storage: "0", values: (0..<6).map(Float.init), offset: 1, size: [2, 2], stride: [1, 3]),
                TorchTensor(name: "fc.bias", storage: "1", values: [0.5, -0.5], size: [2], stride: [1]),
            ])],
            "cifar-binary": ["cifar10.bin": record([3]), "cifar100.bin": record([1, 42])],
            "cifar-pickle": [
                "cifar10-batch": cifarPickle(labels: [3], labelKey: "labels", pixels: record([]), count: 1),
                "cifar100-batch": cifarPickle(labels: [42], labelKey: "fine_labels", pixels: record([]), count: 1),
            ],
            "mat": ["train_list.mat": stanfordDogsList(files: ["n02085620-Chihuahua/a.jpg", "n02085782-Japanese_spaniel/b.jpg"], labels: [1, 2])],
            "jpeg": ["rgb.jpg": try ImageCodecs.encodeJPEG(rgb), "grey.jpg": try ImageCodecs.encodeJPEG(grey)],
            "png": ["rgb.png": try ImageCodecs.encodePNG(rgb), "grey.png": try ImageCodecs.encodePNG(grey)],
        ]
    }
}
