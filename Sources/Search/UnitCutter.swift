/// How a unit of generated text ended once the search cut it.
public enum UnitEnding: String, Codable, Sendable, Hashable {
    /// At the stage's closing tag.
    case closed
    /// At a sentence end (sentence method); the stage goes on.
    case sentence
    /// Without the closing tag: the budget ran out, the model stopped, or it wrote another stage's tag.
    /// The search closes the stage itself.
    case forcedClose
}

/// The part of a raw continuation the search keeps.
struct UnitCut: Equatable, Sendable {
    /// Kept text: no tags; ends with the sentence end's punctuation (not the whitespace after it) for `.sentence`.
    var text: String
    var ending: UnitEnding
    /// Something other than whitespace came after the cut and was dropped.
    var trimmedTail: Bool
}

/// Cuts model output at its stage's boundaries. Works on UTF-8 bytes: tags and sentence ends are found
/// wherever they are, even next to combining marks or invalid-looking text, and every cut falls on an
/// ASCII byte of a tag or sentence end, so both sides stay valid UTF-8.
enum UnitCutter {
    /// - atStageStart: the raw text is the first unit of its stage, so it may (re)write the opening tag.
    /// - forceTags: the prefix already ends with the opening tag; a repeated one is dropped only when
    ///   nothing but whitespace precedes it. Without forced tags, anything before it is dropped.
    /// - sentenceEnds: empty unless the unit is a sentence.
    static func cut(_ raw: String, stage: Stage, atStageStart: Bool, forceTags: Bool, sentenceEnds: [String]) -> UnitCut {
        let bytes = Array(raw.utf8)
        var start = 0
        if atStageStart, let open = find(Array(stage.openingTag.utf8), in: bytes, from: 0) {
            if !forceTags || bytes[0..<open].allSatisfy(isWhitespace) {
                start = open + stage.openingTag.utf8.count
            }
        }

        // The earliest boundary wins; on a tie a tag beats a sentence end.
        var cutAt = bytes.count, resumeAt = bytes.count, keepThrough = bytes.count
        var ending = UnitEnding.forcedClose
        for tag in Stage.allTags {
            let needle = Array(tag.utf8)
            if let p = find(needle, in: bytes, from: start), p < cutAt {
                cutAt = p
                keepThrough = p
                resumeAt = p + needle.count
                ending = tag == stage.closingTag ? .closed : .forcedClose
            }
        }
        for end in sentenceEnds {
            let needle = Array(end.utf8)
            if let p = find(needle, in: bytes, from: start), p < cutAt {
                cutAt = p
                // The whitespace after the punctuation is left to the next sentence: a prefix ending
                // in a space tokenizes as a lone space token, which byte-level BPE models never see
                // in training (the space belongs to the next word's token), and they derail after it.
                keepThrough = p + (needle.lastIndex { !isWhitespace($0) }.map { $0 + 1 } ?? needle.count)
                resumeAt = p + needle.count
                ending = .sentence
            }
        }
        let text = String(decoding: bytes[start..<keepThrough], as: UTF8.self)
        let trimmedTail = !bytes[resumeAt...].allSatisfy(isWhitespace)
        return UnitCut(text: text, ending: ending, trimmedTail: trimmedTail)
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// First position of `needle` in `haystack` at or after `from`; naive search (units are short).
    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, haystack.count - from >= needle.count else { return nil }
        var i = from
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == needle[0] {
                var j = 1
                while j < needle.count, haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}
