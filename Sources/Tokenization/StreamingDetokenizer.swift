/// Turns generated ids into text one id at a time, never emitting half a UTF-8 character: bytes of a
/// character split across tokens wait until the character is complete. The concatenation of all chunks
/// (with `finish()`) equals `Tokenizer.decode` of all ids.
public struct StreamingDetokenizer {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    /// Bytes of an incomplete character at the end of the text so far (at most 3).
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
        pending.reserveCapacity(64)
    }

    /// The text that `id` completes (possibly empty).
    public mutating func push(_ id: Int) -> String {
        if skipSpecialTokens, tokenizer.specialTokenIds.contains(id) { return "" }
        tokenizer.withTokenBytes(id) { pending.append(contentsOf: $0) }
        let ready = completeLength(pending)
        if ready == 0 { return "" }
        let text = String(decoding: pending[..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// Whatever is still held back, with an unfinished character replaced by U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll(keepingCapacity: true) }
        return String(decoding: pending, as: UTF8.self)
    }
}

/// Length of the prefix of `bytes` that can be decoded now: everything except a trailing sequence that
/// is a valid but unfinished UTF-8 character. Invalid bytes are released at once (they decode to
/// U+FFFD whatever follows), so the chunks decode exactly as the whole would.
private func completeLength(_ bytes: [UInt8]) -> Int {
    let n = bytes.count
    var lead = n - 1
    while lead >= 0, n - lead <= 3, bytes[lead] & 0xC0 == 0x80 { lead -= 1 }
    guard lead >= 0 else { return n }
    let b = bytes[lead]
    let needed: Int
    switch b {
    case 0xC2...0xDF: needed = 2
    case 0xE0...0xEF: needed = 3
    case 0xF0...0xF4: needed = 4
    default: return n // ASCII, or a byte that never starts a character
    }
    let have = n - lead
    if have >= needed { return n }
    if have >= 2 {
        // The second byte's allowed range depends on the lead (no overlongs, surrogates or > U+10FFFF).
        let second = bytes[lead + 1]
        let range: ClosedRange<UInt8>
        switch b {
        case 0xE0: range = 0xA0...0xBF
        case 0xED: range = 0x80...0x9F
        case 0xF0: range = 0x90...0xBF
        case 0xF4: range = 0x80...0x8F
        default: range = 0x80...0xBF
        }
        if !range.contains(second) { return n }
    }
    return lead
}
