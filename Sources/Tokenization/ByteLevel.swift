/// GPT-2's reversible map between bytes and printable characters, which byte-level BPE vocabularies
/// are written in (a space is "Ġ", a newline "Ċ"). Internally this module works on raw bytes; the map is
/// only needed to read tokenizer.json and to answer questions asked in token-string form.
enum ByteLevel {
    /// The character (Unicode scalar value) each byte is written as.
    static let scalarForByte: [UInt32] = {
        var printable = [Bool](repeating: false, count: 256)
        for b in 0x21...0x7E { printable[b] = true }
        for b in 0xA1...0xAC { printable[b] = true }
        for b in 0xAE...0xFF { printable[b] = true }
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if printable[b] {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `scalarForByte`, indexed by scalar value (all of them are below 324); -1 where none.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in scalarForByte.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// The raw bytes a byte-level token string stands for, or nil when a character is outside the map.
    static func bytes(fromTokenString token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for scalar in token.unicodeScalars {
            let v = Int(scalar.value)
            guard v < byteForScalar.count, byteForScalar[v] >= 0 else { return nil }
            out.append(UInt8(byteForScalar[v]))
        }
        return out
    }

    /// The token string (in the byte-level alphabet) for raw bytes.
    static func tokenString(fromBytes bytes: some Sequence<UInt8>) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(scalarForByte[Int(b)])!) }
        return String(s)
    }
}
