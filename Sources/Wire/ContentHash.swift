import Foundation

/// Content hashes as they appear on the wire: lowercase hex SHA-256.
public enum ContentHash {
    /// Lowercase hex SHA-256 of `bytes` (64 characters), e.g. an image's `ImageRef.sha256`.
    public static func sha256Hex(_ bytes: some ContiguousBytes) -> String {
        var hasher = SHA256()
        hasher.update(bytes)
        return hex(hasher.finalize())
    }

    /// Lowercase hex of arbitrary bytes.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
