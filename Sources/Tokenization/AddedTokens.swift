import JSON

/// A token of tokenizer.json's `added_tokens`: matched in the text before pre-tokenization.
struct AddedToken: Sendable {
    let id: Int32
    let content: String
    let special: Bool
    /// Only matched when not inside a word (the text around it is not a `\w` character).
    let singleWord: Bool
    /// Swallows the whitespace on its left / right.
    let lstrip: Bool
    let rstrip: Bool
    /// Matched against the normalized text (true) or the raw text (false).
    let normalized: Bool

    init(json: JSONObject) throws {
        let id = try json.int("id")
        guard id >= 0, id <= Int(Int32.max) else {
            throw TokenizerError(.malformedJSON, "\(json.context): id \(id) is out of range")
        }
        self.id = Int32(id)
        content = try json.string("content")
        special = try json.optionalBool("special") ?? false
        singleWord = try json.optionalBool("single_word") ?? false
        lstrip = try json.optionalBool("lstrip") ?? false
        rstrip = try json.optionalBool("rstrip") ?? false
        normalized = try json.optionalBool("normalized") ?? !special
    }
}

/// Finds added tokens in text the way the `tokenizers` library does: leftmost-longest matches (its
/// Aho-Corasick automaton), dropping `single_word` tokens found inside words, and widening `lstrip` /
/// `rstrip` tokens over the whitespace beside them.
struct AddedTokenMatcher {
    private struct Node {
        var children: [UInt8: Int32] = [:]
        var token: Int32 = -1 // index into `tokens`
    }

    private var nodes = [Node()]
    private var tokens: [AddedToken] = []
    private var canStart = [Bool](repeating: false, count: 256)

    var isEmpty: Bool { tokens.isEmpty }

    /// `pattern` is the text to find: the token's content, normalized for `normalized` tokens.
    mutating func add(_ token: AddedToken, pattern: String) {
        let bytes = Array(pattern.utf8)
        guard !bytes.isEmpty else { return }
        var node = 0
        for b in bytes {
            if let child = nodes[node].children[b] {
                node = Int(child)
            } else {
                nodes.append(Node())
                nodes[node].children[b] = Int32(nodes.count - 1)
                node = nodes.count - 1
            }
        }
        if nodes[node].token < 0 { // the first token with a given text wins, as in the library
            nodes[node].token = Int32(tokens.count)
            tokens.append(token)
        }
        canStart[Int(bytes[0])] = true
    }

    /// Calls `emit` for consecutive pieces covering `s`: text between tokens (nil) and tokens.
    func split(_ s: UnsafeBufferPointer<UInt8>, _ emit: (Range<Int>, AddedToken?) -> Void) {
        var pieceStart = 0
        var pos = 0
        while pos < s.count {
            guard canStart[Int(s[pos])], let (end, token) = longestMatch(s, at: pos) else {
                pos += 1
                continue
            }
            var start = pos
            var stop = end
            pos = end // the automaton resumes after its match, whatever happens to the match below
            if token.singleWord {
                let wordBefore = start > 0 && isWordScalar(lastScalar(s, before: start))
                let wordAfter = stop < s.count && isWordScalar(decodeScalar(s, at: stop).value)
                if wordBefore || wordAfter { continue }
            }
            if token.lstrip {
                var j = start
                while j > 0 {
                    let p = previousScalarStart(s, before: j)
                    guard ScalarClass.of(decodeScalar(s, at: p).value).isWhitespace else { break }
                    j = p
                }
                start = max(j, pieceStart)
            }
            if token.rstrip {
                while stop < s.count {
                    let x = decodeScalar(s, at: stop)
                    guard ScalarClass.of(x.value).isWhitespace else { break }
                    stop += x.length
                }
            }
            if pieceStart < start { emit(pieceStart..<start, nil) }
            emit(start..<stop, token)
            pieceStart = stop
        }
        if pieceStart < s.count { emit(pieceStart..<s.count, nil) }
    }

    private func longestMatch(_ s: UnsafeBufferPointer<UInt8>, at pos: Int) -> (Int, AddedToken)? {
        var node = 0
        var best: (Int, AddedToken)?
        var j = pos
        while j < s.count, let child = nodes[node].children[s[j]] {
            node = Int(child)
            j += 1
            if nodes[node].token >= 0 { best = (j, tokens[Int(nodes[node].token)]) }
        }
        return best
    }
}

private func previousScalarStart(_ s: UnsafeBufferPointer<UInt8>, before i: Int) -> Int {
    var p = i - 1
    while p > 0, s[p] & 0xC0 == 0x80 { p -= 1 }
    return p
}

private func lastScalar(_ s: UnsafeBufferPointer<UInt8>, before i: Int) -> UInt32 {
    decodeScalar(s, at: previousScalarStart(s, before: i)).value
}

/// `\w` of the Rust regex crate, which the library uses for `single_word`: Alphabetic, marks, decimal
/// digits, connector punctuation and joiners.
private func isWordScalar(_ v: UInt32) -> Bool {
    guard let scalar = Unicode.Scalar(v) else { return false }
    let p = scalar.properties
    if p.isAlphabetic || p.isJoinControl { return true }
    switch p.generalCategory {
    case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
    default: return false
    }
}
