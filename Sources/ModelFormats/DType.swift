/// Element types of the safetensors format (the whole-byte ones; the sub-byte F4/F6 types are
/// not accepted). Raw values are the strings of the file header.
public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2", f8e8m0 = "F8_E8M0"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"
    case bool = "BOOL", c64 = "C64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64, .c64: 8
        case .f32, .i32, .u32: 4
        case .f16, .bf16, .i16, .u16: 2
        case .f8e4m3, .f8e5m2, .f8e8m0, .i8, .u8, .bool: 1
        }
    }
}
