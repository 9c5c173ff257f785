import Foundation

/// A data set named on the command line as `KIND:PATH` (or `KIND` for a default location):
///
/// | kind | layout |
/// |---|---|
/// | `cifar10:DIR`, `cifar100:DIR` | the official binary batches (`data_batch_*.bin`/`test_batch.bin`, `train.bin`/`test.bin`) or python pickles (`cifar-10-batches-py`, `cifar-100-python`) |
/// | `fashion-mnist[:DIR]` | IDX files, gzipped or not; default `/usr/share/datasets/fashion-mnist` (Debian's `dataset-fashion-mnist`) |
/// | `folder:ROOT` | image folders `ROOT/train/<class>/*` and `ROOT/test/<class>/*` (JPEG/PNG), e.g. the CIFAR-10 JPEG copy |
/// | `tiny-imagenet:ROOT` | `ROOT/train/<wnid>/images/*`, `ROOT/val/images/*` + `val_annotations.txt` |
/// | `stanford-dogs:ROOT` | `ROOT/Images/<breed>/*.jpg` with `train_list.mat` / `test_list.mat` |
///
/// Greyscale images are replicated to three channels and centre-padded to 32×32, so every CIFAR
/// model takes them unchanged.
public struct DatasetSpec: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable { case cifar10, cifar100, fashionMNIST = "fashion-mnist", folder, tinyImageNet = "tiny-imagenet", stanfordDogs = "stanford-dogs" }
    public let kind: Kind
    public let path: String

    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let first = parts.first, let kind = Kind(rawValue: first) else {
            throw DataError.unsupported(path: text, reason: "data set kind must be one of \(Kind.allCases.map(\.rawValue).joined(separator: ", ")) (as KIND:PATH)")
        }
        self.kind = kind
        if parts.count == 2 { path = parts[1] } else if kind == .fashionMNIST { path = DatasetFormats.fashionMNISTDirectory } else {
            throw DataError.unsupported(path: text, reason: "\(kind.rawValue) needs a path: \(kind.rawValue):PATH")
        }
    }

    public var description: String { "\(kind.rawValue):\(path)" }

    /// The training and test splits.
    public func load() throws -> (train: any ImageDataset, test: any ImageDataset) {
        switch kind {
        case .cifar10, .cifar100:
            let hundred = kind == .cifar100
            // The python layout when its folder or files are there, the binary one otherwise.
            let fm = FileManager.default
            let python = fm.fileExists(atPath: path + (hundred ? "/cifar-100-python" : "/cifar-10-batches-py"))
                || fm.fileExists(atPath: path + (hundred ? "/train" : "/data_batch_1"))
            if python {
                return (try DatasetFormats.cifarPython(directory: path, hundred: hundred, train: true),
                        try DatasetFormats.cifarPython(directory: path, hundred: hundred, train: false))
            }
            return (try DatasetFormats.cifarBinary(directory: path, hundred: hundred, train: true),
                    try DatasetFormats.cifarBinary(directory: path, hundred: hundred, train: false))
        case .fashionMNIST:
            return (try DatasetFormats.fashionMNIST(directory: path, train: true), try DatasetFormats.fashionMNIST(directory: path, train: false))
        case .tinyImageNet:
            return (try DatasetFormats.tinyImageNet(root: path, train: true), try DatasetFormats.tinyImageNet(root: path, train: false))
        case .stanfordDogs:
            return (try DatasetFormats.stanfordDogs(root: path, train: true), try DatasetFormats.stanfordDogs(root: path, train: false))
        case .folder:
            let train = try DatasetFormats.imageFolder(path + "/train"), test = try DatasetFormats.imageFolder(path + "/test")
            guard train.classNames == test.classNames else {
                throw DataError.mismatch(path: path, reason: "train/ has classes \(train.classNames) but test/ has \(test.classNames)")
            }
            return (train, test)
        }
    }

    /// The paper's augmentation and normalisation for this data set.
    public func pipeline(train: Bool) -> ImagePipeline {
        switch kind {
        case .fashionMNIST:
            return ImagePipeline(channels: 3, padToSize: 32, randomCropPadding: train ? 4 : nil, horizontalFlip: train,
                                 mean: [0.2860, 0.2860, 0.2860], std: [0.3530, 0.3530, 0.3530])
        case .tinyImageNet:
            // DESIGN.md: 32×32 random-resized crops + flip for training; the test images resized to 32.
            var p = ImagePipeline(channels: 3, horizontalFlip: train, mean: [0.4802, 0.4481, 0.3975], std: [0.2770, 0.2691, 0.2822])
            if train { p.randomResizedCrop = 32 } else { p.resize = 32; p.centerCrop = 32 }
            return p
        case .stanfordDogs:
            // DESIGN.md: 224 random-resized crops + flip; test resize 256 → centre crop 224; ImageNet statistics.
            var p = ImagePipeline(channels: 3, horizontalFlip: train, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
            if train { p.randomResizedCrop = 224 } else { p.resize = 256; p.centerCrop = 224 }
            return p
        default:
            return .cifar(train: train)
        }
    }
}
