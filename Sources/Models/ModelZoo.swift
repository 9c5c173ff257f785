import NN

/// Builds architectures of the reference zoo by name.
public enum ModelZoo {
    /// Names this build can construct, in the order of `reference/models.md`.
    public static let names = ["resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                               "resnet8x4", "resnet20x4", "resnet32x4", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2",
                               "vgg8", "vgg11", "vgg13", "vgg16", "vgg19", "MobileNetV2", "ShuffleV1", "ShuffleV2",
                               "ResNet18", "ResNet34", "ResNet50", "ResNet101", "shufflenet_v2_x0_5"]

    /// The rest of the reference code's model dictionary (`reference/zoo_extra.json`).
    public static let dictionaryNames = ["resnet8x4_double", "ShuffleV2_0_5", "MobileNetV2_Imagenet", "vgg8_imagenet", "vgg11_imagenet",
                                         "vgg13_imagenet", "ShuffleV2_Imagenet", "shufflenet_v2_x2_0", "resnext50_32x4d", "wrn_50_2"]

    /// Architectures built here that the reference zoo does not pin (its versions are unwidened).
    public static let extraNames = ["ResNet18x2", "ResNet34x2", "ResNet34x4"]

    /// Every architecture `make` builds.
    public static var allNames: [String] { names + dictionaryNames + extraNames }

    /// The architectures made for 224×224 inputs.
    public static let imageNetNames: Set<String> = Set(["ResNet18", "ResNet34", "ResNet50", "ResNet101", "shufflenet_v2_x0_5", "MobileNetV2_Imagenet",
                                                        "vgg8_imagenet", "vgg11_imagenet", "vgg13_imagenet", "ShuffleV2_Imagenet",
                                                        "shufflenet_v2_x2_0", "resnext50_32x4d", "wrn_50_2"] + extraNames)

    public enum Error: Swift.Error, CustomStringConvertible {
        case unknownArchitecture(String)
        public var description: String {
            switch self {
            case .unknownArchitecture(let name):
                return "unknown architecture '\(name)'; known: \(ModelZoo.allNames.joined(separator: ", "))"
            }
        }
    }

    public static func make(_ name: String, classes: Int) throws -> any FeatureClassifier {
        switch name {
        case "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110":
            return CIFARResNet(depth: Int(name.dropFirst(6))!, widths: [16, 16, 32, 64], classes: classes)
        case "resnet8x4_double":
            return CIFARResNet(depth: 8, widths: [64, 128, 256, 512], classes: classes)
        case "resnet8x4", "resnet20x4", "resnet32x4":
            return CIFARResNet(depth: Int(name.dropFirst(6).dropLast(2))!, widths: [32, 64, 128, 256], classes: classes)
        case "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2":
            let parts = name.split(separator: "_")
            return WideResNet(depth: Int(parts[1])!, widen: Int(parts[2])!, classes: classes)
        case "ResNet18", "ResNet34", "ResNet50", "ResNet101":
            return ImageNetResNet(depth: Int(name.dropFirst(6))!, classes: classes)
        case "ResNet18x2", "ResNet34x2", "ResNet34x4":
            return ImageNetResNet(depth: Int(name.dropFirst(6).prefix(2))!, classes: classes, widen: Int(String(name.last!))!)
        case "resnext50_32x4d": return ImageNetResNet(depth: 50, classes: classes, groups: 32, widthPerGroup: 4)
        case "wrn_50_2": return ImageNetResNet(depth: 50, classes: classes, widthPerGroup: 128)
        case "shufflenet_v2_x0_5": return ShuffleNetV2ImageNet(classes: classes)
        case "ShuffleV2_Imagenet": return ShuffleNetV2ImageNet(classes: classes, widths: [24, 116, 232, 464, 1024])
        case "shufflenet_v2_x2_0": return ShuffleNetV2ImageNet(classes: classes, widths: [24, 244, 488, 976, 2048])
        case "ShuffleV2_0_5": return ShuffleNetV2(classes: classes, widths: [48, 96, 192, 1024])
        case "MobileNetV2_Imagenet": return MobileNetV2ImageNet(classes: classes)
        case _ where ImageNetVGG.configurations[name] != nil:
            return ImageNetVGG(ImageNetVGG.configurations[name]!, classes: classes)
        case "MobileNetV2": return MobileNetV2(classes: classes)
        case "ShuffleV1": return ShuffleNetV1(classes: classes)
        case "ShuffleV2": return ShuffleNetV2(classes: classes)
        case _ where VGG.configurations[name] != nil:
            return VGG(VGG.configurations[name]!, classes: classes)
        default:
            throw Error.unknownArchitecture(name)
        }
    }
}
