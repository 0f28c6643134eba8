/// The character classes the supported split patterns distinguish, with Oniguruma's meaning
/// (the regex engine the `tokenizers` library runs these patterns with, Unicode 16.0):
/// `\p{L}` = general category L*, `\p{N}` = N*, `\s` = the Unicode White_Space property.
enum ScalarClass: UInt8 {
    case letter
    case number
    /// `\r` or `\n`: whitespace that some patterns treat specially.
    case newline
    case whitespace
    case other

    var isWhitespace: Bool { self == .whitespace || self == .newline }

    static func of(_ v: UInt32) -> ScalarClass {
        if v < 0x10000 { return ScalarClass(rawValue: basicPlane[Int(v)])! }
        return classify(v)
    }

    /// Classes of the Basic Multilingual Plane, computed once (64 KiB) so that scanning text avoids the
    /// standard library's property lookup for nearly every character.
    private static let basicPlane: [UInt8] = (0..<0x10000).map { classify(UInt32($0)).rawValue }

    private static func classify(_ v: UInt32) -> ScalarClass {
        switch v {
        case 0x0A, 0x0D: return .newline
        case 0x09, 0x0B, 0x0C, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return .whitespace
        default: break
        }
        guard let scalar = Unicode.Scalar(v) else { return .other } // surrogate code points
        // The library's Oniguruma has Unicode 16.0 tables (checked over every code point against
        // tokenizers 0.23); characters assigned later are unassigned, so not letters or numbers, there.
        guard let age = scalar.properties.age, age.major < 16 || (age.major == 16 && age.minor == 0) else { return .other }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }
}

/// Decodes the scalar starting at `i` in valid UTF-8 (the bytes of a Swift `String`).
@inline(__always)
func decodeScalar(_ s: UnsafeBufferPointer<UInt8>, at i: Int) -> (value: UInt32, length: Int) {
    let b0 = UInt32(s[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(s[i + 1]) & 0x3F, 2) }
    if b0 < 0xF0 { return ((b0 & 0x0F) << 12 | (UInt32(s[i + 1]) & 0x3F) << 6 | UInt32(s[i + 2]) & 0x3F, 3) }
    return ((b0 & 0x07) << 18 | (UInt32(s[i + 1]) & 0x3F) << 12 | (UInt32(s[i + 2]) & 0x3F) << 6 | UInt32(s[i + 3]) & 0x3F, 4)
}
