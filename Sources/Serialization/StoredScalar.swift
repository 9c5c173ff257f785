/// Element types of stored tensors (little-endian), decoded to Float32.
public enum StoredScalar: Sendable {
    case f32, f64, f16, bf16, i64, i32, i16, i8, u8

    /// Bytes per element.
    public var width: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8: return 1
        }
    }

    /// safetensors' dtype names (`F32`, `I64`, `BOOL`, …).
    public init?(safetensors name: String) {
        switch name {
        case "F32": self = .f32
        case "F64": self = .f64
        case "F16": self = .f16
        case "BF16": self = .bf16
        case "I64": self = .i64
        case "I32": self = .i32
        case "I16": self = .i16
        case "I8": self = .i8
        case "U8", "BOOL": self = .u8
        default: return nil
        }
    }

    /// PyTorch's storage class names (`FloatStorage`, `LongStorage`, …).
    public init?(torchStorage name: String) {
        switch name {
        case "FloatStorage": self = .f32
        case "DoubleStorage": self = .f64
        case "HalfStorage": self = .f16
        case "BFloat16Storage": self = .bf16
        case "LongStorage": self = .i64
        case "IntStorage": self = .i32
        case "ShortStorage": self = .i16
        case "CharStorage": self = .i8
        case "ByteStorage", "BoolStorage": self = .u8
        default: return nil
        }
    }

    /// Element `index` of `raw`.
    @inline(__always)
    public func decode(_ raw: UnsafeRawBufferPointer, _ index: Int) -> Float {
        let at = index * width
        switch self {
        case .f32: return Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
        case .f64: return Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))))
        case .f16: return Float(Float16(bitPattern: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))))
        case .bf16: return Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))) << 16)
        case .i64: return Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self)))
        case .i32: return Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int32.self)))
        case .i16: return Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int16.self)))
        case .i8: return Float(raw.load(fromByteOffset: at, as: Int8.self))
        case .u8: return Float(raw[at])
        }
    }
}
