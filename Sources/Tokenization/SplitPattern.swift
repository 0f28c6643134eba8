/// The pre-tokenization regexes of the supported model families, recognised by their exact pattern
/// strings and run as hand-written scanners (no regex engine). Each scanner returns where the regex's
/// next match starting at a given position ends; alternatives are tried in the regex's order, with the
/// backtracking the regex would do spelled out.
enum SplitPattern: Sendable {
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Llama-3's pattern with single digits (`\p{N}` instead of `\p{N}{1,3}`).
    case qwen2
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (also ByteLevel's `use_regex`).
    case gpt2
    /// Every `\p{N}` on its own, the text between kept whole: the `Digits` pre-tokenizer with
    /// `individual_digits` (SmolLM), llama.cpp's `\p{N}` step.
    case digits

    static let llama3Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    init?(source: String) {
        switch source {
        case Self.llama3Source: self = .llama3
        case Self.qwen2Source: self = .qwen2
        case Self.gpt2Source: self = .gpt2
        default: return nil
        }
    }

    /// Calls `emit` with the byte range of every match, in order. The patterns match every character
    /// (`digits` emits the runs between numbers as pieces too), so the pieces tile the input.
    func split(_ s: UnsafeBufferPointer<UInt8>, _ emit: (Range<Int>) -> Void) {
        let scanner = Scanner(s: s)
        var i = 0
        while i < s.count {
            let end: Int
            switch self {
            case .llama3: end = scanner.llamaMatch(at: i, maxDigits: 3)
            case .qwen2: end = scanner.llamaMatch(at: i, maxDigits: 1)
            case .gpt2: end = scanner.gpt2Match(at: i)
            case .digits:
                let first = scanner.scalar(at: i)
                end = first.cls == .number ? i + first.length : scanner.runEnd(from: i) { $0 != .number }
            }
            emit(i..<end)
            i = end
        }
    }
}

private struct Scanner {
    let s: UnsafeBufferPointer<UInt8>

    @inline(__always)
    func scalar(at i: Int) -> (value: UInt32, length: Int, cls: ScalarClass) {
        let (v, l) = decodeScalar(s, at: i)
        return (v, l, ScalarClass.of(v))
    }

    @inline(__always)
    func cls(at i: Int) -> ScalarClass? {
        i < s.count ? scalar(at: i).cls : nil
    }

    /// End of the run of scalars of class `c` (or of whitespace, newlines included) starting at `i`.
    @inline(__always)
    func runEnd(from i: Int, _ matches: (ScalarClass) -> Bool) -> Int {
        var j = i
        while j < s.count {
            let x = scalar(at: j)
            guard matches(x.cls) else { break }
            j += x.length
        }
        return j
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d` after the apostrophe at `i`; case-insensitive as `(?i:…)` is in
    /// Oniguruma, where "ſ" (U+017F) folds to "s".
    func contractionEnd(at i: Int, caseInsensitive: Bool) -> Int? {
        func letter(_ j: Int) -> UInt32? {
            guard j < s.count else { return nil }
            let v = decodeScalar(s, at: j).value
            guard caseInsensitive else { return v }
            if v == 0x17F { return 0x73 }
            return (v >= 0x41 && v <= 0x5A) ? v + 0x20 : v
        }
        let j = i + 1
        guard let a = letter(j) else { return nil }
        switch a {
        case 0x73, 0x74, 0x6D, 0x64: // s t m d
            return j + decodeScalar(s, at: j).length
        case 0x72, 0x76, 0x6C: // r(e) v(e) l(l)
            let k = j + 1
            guard let b = letter(k) else { return nil }
            if (a == 0x6C && b == 0x6C) || (a != 0x6C && b == 0x65) { return k + 1 }
            return nil
        default:
            return nil
        }
    }

    /// The whitespace alternatives every pattern ends with: `\s+(?!\S)|\s+`, preceded for Llama-3 and
    /// Qwen2 by `\s*[\r\n]+` (whitespace up to and including the last newline of the run).
    func whitespaceEnd(at i: Int, newlineRule: Bool) -> Int {
        var j = i
        var lastStart = i
        var afterLastNewline = -1
        while j < s.count {
            let x = scalar(at: j)
            guard x.cls.isWhitespace else { break }
            if x.cls == .newline { afterLastNewline = j + 1 }
            lastStart = j
            j += x.length
        }
        if newlineRule, afterLastNewline > 0 { return afterLastNewline }
        // `\s+(?!\S)`: the whole run at the end of the text; otherwise the run minus its last
        // character, which then starts the next word. A single character falls to `\s+`.
        if j == s.count || lastStart == i { return j }
        return lastStart
    }

    func llamaMatch(at i: Int, maxDigits: Int) -> Int {
        let c0 = scalar(at: i)
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if c0.value == 0x27, let end = contractionEnd(at: i, caseInsensitive: true) { return end }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if c0.cls == .letter { return runEnd(from: i) { $0 == .letter } }
        if c0.cls != .number, c0.cls != .newline, cls(at: i + c0.length) == .letter {
            return runEnd(from: i + c0.length) { $0 == .letter }
        }
        // \p{N}{1,3} (Qwen2: \p{N})
        if c0.cls == .number {
            var j = i, count = 0
            while j < s.count, count < maxDigits {
                let x = scalar(at: j)
                guard x.cls == .number else { break }
                j += x.length
                count += 1
            }
            return j
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        var start = -1
        if c0.cls == .other {
            start = i
        } else if c0.value == 0x20, cls(at: i + 1) == .other {
            start = i + 1
        }
        if start >= 0 {
            var j = runEnd(from: start) { $0 == .other }
            while j < s.count, s[j] == 0x0A || s[j] == 0x0D { j += 1 }
            return j
        }
        // \s*[\r\n]+|\s+(?!\S)|\s+
        return whitespaceEnd(at: i, newlineRule: true)
    }

    func gpt2Match(at i: Int) -> Int {
        let c0 = scalar(at: i)
        if c0.value == 0x27, let end = contractionEnd(at: i, caseInsensitive: false) { return end }
        //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ : an optional space, then a run of one class.
        let c1 = c0.value == 0x20 ? cls(at: i + 1) : nil
        for wanted in [ScalarClass.letter, .number, .other] {
            if c0.cls == wanted { return runEnd(from: i) { $0 == wanted } }
            if c1 == wanted { return runEnd(from: i + 1) { $0 == wanted } }
        }
        return whitespaceEnd(at: i, newlineRule: false)
    }
}
