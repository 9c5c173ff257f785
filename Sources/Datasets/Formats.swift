import Foundation
import Serialization

/// Readers of the standard on-disk layouts of the data sets the paper uses.
public enum DatasetFormats {
    static func read(_ path: String, expected: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
              let data = FileManager.default.contents(atPath: path) else {
            throw DataError.missing(path: path, expected: expected)
        }
        return [UInt8](data)
    }

    // MARK: CIFAR binary

    public static let cifar10Classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    /// CIFAR-10's binary layout (`data_batch_1…5.bin`, `test_batch.bin`: records of 1 label byte and
    /// 3072 pixel bytes, planar RGB 32×32) or CIFAR-100's (`train.bin`, `test.bin`: coarse and fine
    /// label bytes, then pixels; the fine label is used). `directory` may also be the folder that holds
    /// `cifar-10-batches-bin` / `cifar-100-binary`.
    public static func cifarBinary(directory: String, hundred: Bool, train: Bool) throws -> InMemoryDataset {
        var dir = directory
        let sub = hundred ? "cifar-100-binary" : "cifar-10-batches-bin"
        if FileManager.default.fileExists(atPath: dir + "/" + sub) { dir += "/" + sub }
        let files = hundred ? [train ? "train.bin" : "test.bin"]
                            : (train ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"])
        var pixels: [UInt8] = [], labels: [Int] = []
        for name in files {
            let path = dir + "/" + name
            let bytes = try read(path, expected: "a CIFAR-\(hundred ? 100 : 10) binary batch")
            try cifarBinaryBatch(bytes, path: path, hundred: hundred, pixels: &pixels, labels: &labels)
        }
        let names = hundred ? (0..<100).map { "class\($0)" } : cifar10Classes
        return InMemoryDataset(width: 32, height: 32, channels: 3, pixels: pixels, labels: labels, classNames: names)
    }

    /// Appends the records of one CIFAR binary batch (interleaved RGB pixels and labels).
    package static func cifarBinaryBatch(_ bytes: [UInt8], path: String, hundred: Bool, pixels: inout [UInt8], labels: inout [Int]) throws {
        let labelBytes = hundred ? 2 : 1, record = labelBytes + 3072
        guard !bytes.isEmpty, bytes.count % record == 0 else {
            throw DataError.corrupt(path: path, reason: "\(bytes.count) bytes is not a whole number of \(record)-byte records")
        }
        let classes = hundred ? 100 : 10
        pixels.reserveCapacity(pixels.count + bytes.count / record * 3072)
        for r in 0..<(bytes.count / record) {
            let base = r * record
            let label = Int(bytes[base + labelBytes - 1])
            guard label < classes else { throw DataError.corrupt(path: path, reason: "record \(r) has label \(label), expected 0..<\(classes)") }
            labels.append(label)
            // Planar RRR…GGG…BBB → interleaved RGB.
            for i in 0..<1024 { for c in 0..<3 { pixels.append(bytes[base + labelBytes + c * 1024 + i]) } }
        }
    }

    // MARK: CIFAR python pickles

    /// CIFAR's python layout (`cifar-10-batches-py/data_batch_1…5`, `test_batch`;
    /// `cifar-100-python/train`, `test`): pickled dictionaries whose `data` is a NumPy uint8 array of
    /// N × 3072 planar RGB rows and whose `labels` / `fine_labels` are lists. Read without executing
    /// anything from the file.
    public static func cifarPython(directory: String, hundred: Bool, train: Bool) throws -> InMemoryDataset {
        var dir = directory
        let sub = hundred ? "cifar-100-python" : "cifar-10-batches-py"
        if FileManager.default.fileExists(atPath: dir + "/" + sub) { dir += "/" + sub }
        let files = hundred ? [train ? "train" : "test"] : (train ? (1...5).map { "data_batch_\($0)" } : ["test_batch"])
        var pixels: [UInt8] = [], labels: [Int] = []
        for name in files {
            let path = dir + "/" + name
            let bytes = try read(path, expected: "a pickled CIFAR-\(hundred ? 100 : 10) batch")
            try cifarPythonBatch(bytes, path: path, hundred: hundred, pixels: &pixels, labels: &labels)
        }
        let names = hundred ? (0..<100).map { "class\($0)" } : cifar10Classes
        return InMemoryDataset(width: 32, height: 32, channels: 3, pixels: pixels, labels: labels, classNames: names)
    }

    /// Appends the images and labels of one pickled CIFAR batch (interleaved RGB pixels).
    package static func cifarPythonBatch(_ bytes: [UInt8], path: String, hundred: Bool, pixels: inout [UInt8], labels: inout [Int]) throws {
        do {
            var unpickler = Unpickler(bytes, path: path)
            guard let entries = try unpickler.load().stringKeyedEntries else {
                throw DataError.corrupt(path: path, reason: "the pickle does not hold a dictionary")
            }
            let dict = Dictionary(entries, uniquingKeysWith: { a, _ in a })
            guard let data = dict["data"], let (shape, raw) = numpyUInt8(data) else {
                throw DataError.corrupt(path: path, reason: "no uint8 NumPy array under 'data'")
            }
            guard shape.count == 2, shape[1] == 3072, CheckedCount.product(shape[0], 3072) == raw.count else {
                throw DataError.corrupt(path: path, reason: "'data' has shape \(shape), expected N × 3072")
            }
            let labelKey = hundred ? "fine_labels" : "labels"
            guard case .list(let list)? = dict[labelKey] else { throw DataError.corrupt(path: path, reason: "no '\(labelKey)' list") }
            let batchLabels = list.compactMap { v -> Int? in if case .int(let i) = v { return i }; return nil }
            guard batchLabels.count == shape[0] else {
                throw DataError.mismatch(path: path, reason: "\(batchLabels.count) labels for \(shape[0]) images")
            }
            let classes = hundred ? 100 : 10
            if let bad = batchLabels.first(where: { $0 < 0 || $0 >= classes }) {
                throw DataError.corrupt(path: path, reason: "label \(bad), expected 0..<\(classes)")
            }
            labels += batchLabels
            for r in 0..<shape[0] { for i in 0..<1024 { for c in 0..<3 { pixels.append(raw[r * 3072 + c * 1024 + i]) } } }
        } catch let e as SerializationError {
            throw DataError(e)
        }
    }

    /// Shape and bytes of a pickled NumPy uint8 array (`numpy.core.multiarray._reconstruct` + state).
    static func numpyUInt8(_ value: PickleValue) -> ([Int], [UInt8])? {
        guard case let .object(callable, _, state?) = value, callable.isGlobal("numpy.core.multiarray", "_reconstruct"),
              case .tuple(let fields) = state, fields.count >= 5, case .tuple(let dims) = fields[1] else { return nil }
        if case let .object(_, dtypeArgs, _) = fields[2], case .string(let code)? = dtypeArgs.first, code != "u1" && code != "|u1" { return nil }
        let shape = dims.compactMap { v -> Int? in if case .int(let i) = v { return i }; return nil }
        guard shape.count == dims.count else { return nil }
        switch fields[4] {
        case .bytes(let b): return (shape, b)
        case .string(let s): return (shape, s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })  // Python 2 str as latin-1
        default: return nil
        }
    }

    // MARK: IDX (MNIST, Fashion-MNIST)

    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"
    public static let fashionMNISTClasses = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]

    /// Reads an IDX file, gzipped or not (the path as given, or with `.gz` appended if only that exists).
    static func idx(_ path: String) throws -> (dims: [Int], payload: [UInt8], path: String) {
        var actual = path
        if !FileManager.default.fileExists(atPath: actual) && FileManager.default.fileExists(atPath: path + ".gz") { actual = path + ".gz" }
        let (dims, payload) = try idx(bytes: try read(actual, expected: "an IDX file (optionally gzipped)"), path: actual)
        return (dims, payload, actual)
    }

    /// The dimensions and unsigned-byte payload of an IDX file's bytes (gunzipped first if they are gzip).
    package static func idx(bytes file: [UInt8], path: String) throws -> (dims: [Int], payload: [UInt8]) {
        var bytes = file
        if bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B { bytes = try ImageCodecs.gunzip(bytes, path: path) }
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0, bytes[2] == 0x08 else {
            throw DataError.corrupt(path: path, reason: "wrong magic number \(bytes.prefix(4).map { String(format: "%02x", $0) }.joined()), expected 0000 08 (unsigned bytes) + rank")
        }
        let rank = Int(bytes[3])
        guard rank >= 1, bytes.count >= 4 + 4 * rank else { throw DataError.corrupt(path: path, reason: "header of rank \(rank) is truncated") }
        let dims = (0..<rank).map { d in (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * d + $1]) } }
        guard let expected = CheckedCount.product(dims) else {
            throw DataError.corrupt(path: path, reason: "header dimensions \(dims) multiply to more values than any file holds")
        }
        let payload = Array(bytes[(4 + 4 * rank)...])
        guard payload.count == expected else {
            throw DataError.corrupt(path: path, reason: "header promises \(expected) values (\(dims)), file holds \(payload.count)")
        }
        return (dims, payload)
    }

    /// Fashion-MNIST (or MNIST) in IDX files: `train-images-idx3-ubyte[.gz]` etc. in `directory`.
    public static func fashionMNIST(directory: String = fashionMNISTDirectory, train: Bool) throws -> InMemoryDataset {
        let prefix = train ? "train" : "t10k"
        let images = try idx(directory + "/\(prefix)-images-idx3-ubyte")
        let labels = try idx(directory + "/\(prefix)-labels-idx1-ubyte")
        guard images.dims.count == 3 else { throw DataError.corrupt(path: images.path, reason: "expected 3 dimensions (count, rows, columns), got \(images.dims)") }
        guard labels.dims.count == 1 else { throw DataError.corrupt(path: labels.path, reason: "expected 1 dimension, got \(labels.dims)") }
        guard images.dims[0] == labels.dims[0] else {
            throw DataError.mismatch(path: labels.path, reason: "\(labels.dims[0]) labels for \(images.dims[0]) images in \(images.path)")
        }
        if let bad = labels.payload.firstIndex(where: { $0 >= 10 }) {
            throw DataError.corrupt(path: labels.path, reason: "label \(labels.payload[bad]) at \(bad), expected 0..<10")
        }
        return InMemoryDataset(width: images.dims[2], height: images.dims[1], channels: 1, pixels: images.payload,
                               labels: labels.payload.map(Int.init), classNames: fashionMNISTClasses)
    }

    // MARK: Tiny-ImageNet

    /// Tiny-ImageNet's layout: `ROOT/train/<wnid>/images/*.JPEG` for training, and
    /// `ROOT/val/images/*.JPEG` labelled by `ROOT/val/val_annotations.txt` (file, wnid, box per line)
    /// for validation; classes are the training folders in sorted order.
    public static func tinyImageNet(root: String, train: Bool) throws -> FileDataset {
        let trainSet = try imageFolder(root + "/train")
        if train { return trainSet }
        let annotations = root + "/val/val_annotations.txt"
        let text = String(decoding: try read(annotations, expected: "Tiny-ImageNet's validation labels (file, wnid, box per line)"), as: UTF8.self)
        let index = Dictionary(uniqueKeysWithValues: trainSet.classNames.enumerated().map { ($0.element, $0.offset) })
        var files: [String] = [], labels: [Int] = []
        for (n, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).map(String.init)
            guard fields.count >= 2 else { throw DataError.corrupt(path: annotations, reason: "line \(n + 1) has no file and class") }
            guard let label = index[fields[1]] else {
                throw DataError.mismatch(path: annotations, reason: "line \(n + 1) names class '\(fields[1])', which has no folder in \(root)/train")
            }
            let file = root + "/val/images/" + fields[0]
            guard FileManager.default.fileExists(atPath: file) else { throw DataError.missing(path: file, expected: "the image named on line \(n + 1) of \(annotations)") }
            files.append(file); labels.append(label)
        }
        guard !files.isEmpty else { throw DataError.emptyFolder(path: annotations, expected: "one line per validation image") }
        return FileDataset(files: files, labels: labels, classNames: trainSet.classNames)
    }

    // MARK: Stanford Dogs

    /// Stanford Dogs' layout: `ROOT/Images/<breed>/*.jpg` and `ROOT/train_list.mat` /
    /// `ROOT/test_list.mat` (MATLAB v5: `file_list`, a cell of paths relative to `Images/`, and
    /// `labels`, 1-based breed numbers in the sorted order of the breed folders).
    public static func stanfordDogs(root: String, train: Bool) throws -> FileDataset {
        let listPath = root + (train ? "/train_list.mat" : "/test_list.mat")
        let entries = try stanfordDogsList(try read(listPath, expected: "Stanford Dogs' \(train ? "train" : "test") list (MATLAB v5 .mat)"), path: listPath)
        let images = root + "/Images"
        guard let listed = try? FileManager.default.contentsOfDirectory(atPath: images) else {
            throw DataError.missing(path: images, expected: "the folder of breed folders beside \((listPath as NSString).lastPathComponent)")
        }
        let classes = listed.filter { !$0.hasPrefix(".") }.sorted()
        guard !classes.isEmpty else { throw DataError.emptyFolder(path: images, expected: "one folder per breed") }
        var files: [String] = [], labels: [Int] = []
        for (i, entry) in entries.enumerated() {
            guard entry.breed <= classes.count else {
                throw DataError.mismatch(path: listPath, reason: "entry \(i + 1) has label \(entry.breed), but \(images) has \(classes.count) breeds")
            }
            files.append(images + "/" + entry.file)
            labels.append(entry.breed - 1)
        }
        return FileDataset(files: files, labels: labels, classNames: classes)
    }

    /// The entries of a Stanford Dogs list file: each image's path relative to `Images/` and its
    /// 1-based breed number.
    package static func stanfordDogsList(_ bytes: [UInt8], path listPath: String) throws -> [(file: String, breed: Int)] {
        let mat: MATFile
        do { mat = try MATFile(bytes, path: listPath) } catch let e as SerializationError { throw DataError(e) }
        guard case .cell(let cells, _)? = mat.variables["file_list"] else {
            throw DataError.corrupt(path: listPath, reason: "no 'file_list' cell array (variables: \(mat.variables.keys.sorted().joined(separator: ", ")))")
        }
        guard case .numeric(let numbers, _)? = mat.variables["labels"] else { throw DataError.corrupt(path: listPath, reason: "no numeric 'labels'") }
        guard numbers.count == cells.count else { throw DataError.mismatch(path: listPath, reason: "\(numbers.count) labels for \(cells.count) files") }
        return try zip(cells, numbers).enumerated().map { i, entry in
            guard case .char(let relative) = entry.0 else { throw DataError.corrupt(path: listPath, reason: "file_list entry \(i + 1) is not text") }
            guard entry.1 >= 1, entry.1 <= 1_000_000, entry.1 == entry.1.rounded() else {
                throw DataError.corrupt(path: listPath, reason: "entry \(i + 1) has label \(entry.1), expected a whole breed number from 1")
            }
            return (relative, Int(entry.1))
        }
    }

    // MARK: Image folders

    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    /// `root/<class>/<image>` (classes in sorted order, as torchvision's `ImageFolder`), images found
    /// recursively under each class folder (so `train/<wnid>/images/*.JPEG` works too).
    public static func imageFolder(_ root: String) throws -> FileDataset {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError.missing(path: root, expected: "a folder of class folders")
        }
        let classes = try fm.contentsOfDirectory(atPath: root).filter { name in
            var d: ObjCBool = false
            return !name.hasPrefix(".") && fm.fileExists(atPath: root + "/" + name, isDirectory: &d) && d.boolValue
        }.sorted()
        guard !classes.isEmpty else { throw DataError.emptyFolder(path: root, expected: "one folder per class") }
        var files: [String] = [], labels: [Int] = []
        for (label, name) in classes.enumerated() {
            let folder = root + "/" + name
            let found = (fm.enumerator(atPath: folder)?.compactMap { $0 as? String } ?? [])
                .filter { imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
            guard !found.isEmpty else { throw DataError.emptyFolder(path: folder, expected: "JPEG or PNG images of class '\(name)'") }
            files += found.map { folder + "/" + $0 }
            labels += Array(repeating: label, count: found.count)
        }
        return FileDataset(files: files, labels: labels, classNames: classes)
    }
}
