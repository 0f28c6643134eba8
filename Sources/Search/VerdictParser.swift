/// What one judge call said, in the positions it showed the candidates.
public enum CallVerdict: String, Codable, Sendable, Hashable {
    /// The response shown first is better.
    case first
    /// The response shown second is better.
    case second
    /// `logprob` mode: both choices exactly equally likely.
    case tie
    /// No usable verdict: text naming neither or both labels ambiguously, or non-finite log-probabilities.
    case unparsable
    /// The judge could not be asked: the prompt did not fit its context.
    case promptTooLong
}

/// Reads a `generate`-mode verdict. Strict on purpose: a verdict that cannot be read is `.unparsable`
/// and counted, never quietly turned into a choice (the reference counts it as response 2).
///
/// Rules, on the text lower-cased with `*`, `` ` ``, `"` and `_` removed and whitespace collapsed:
/// 1. nothing but "1" or "2" (with optional brackets or final punctuation) → that one;
/// 2. the text ends with a label ("…, so the better response is response 2.") → that one;
/// 3. only one of the two labels is mentioned (as a whole word: "response 1" is not in "response 12") → that one;
/// 4. otherwise → unparsable.
public struct VerdictParser: Sendable {
    let first: String
    let second: String

    /// - first, second: how the prompt names the two candidates (the templates' `labels`).
    public init(first: String, second: String) {
        self.first = Self.normalize(first)
        self.second = Self.normalize(second)
    }

    public init(templates: JudgeTemplates) {
        self.init(first: templates.labels[0], second: templates.labels[1])
    }

    public func parse(_ text: String) -> CallVerdict {
        let normalized = Self.normalize(text)
        var core = Substring(normalized)
        while let c = core.last, ".!)]:;,".contains(c) || c == " " { core.removeLast() }
        while let c = core.first, "([".contains(c) || c == " " { core.removeFirst() }
        if core == "1" { return .first }
        if core == "2" { return .second }

        if endsWithWord(core, first) { return .first }
        if endsWithWord(core, second) { return .second }

        let mentionsFirst = Self.mentions(first, in: core)
        let mentionsSecond = Self.mentions(second, in: core)
        if mentionsFirst && !mentionsSecond { return .first }
        if mentionsSecond && !mentionsFirst { return .second }
        return .unparsable
    }

    func endsWithWord(_ text: Substring, _ label: String) -> Bool {
        guard text.hasSuffix(label) else { return false }
        let before = text.dropLast(label.count)
        return before.last.map { !Self.isWordCharacter($0) } ?? true
    }

    /// True when `label` occurs as a whole word (not glued to letters or digits on either side).
    static func mentions(_ label: String, in text: Substring) -> Bool {
        var searchStart = text.startIndex
        while let range = text[searchStart...].firstRange(of: label) {
            let beforeOK = range.lowerBound == text.startIndex || !isWordCharacter(text[text.index(before: range.lowerBound)])
            let afterOK = range.upperBound == text.endIndex || !isWordCharacter(text[range.upperBound])
            if beforeOK && afterOK { return true }
            searchStart = text.index(after: range.lowerBound)
        }
        return false
    }

    static func isWordCharacter(_ c: Character) -> Bool { c.isLetter || c.isNumber }

    static func normalize(_ text: String) -> String {
        let dropped: Set<Character> = ["*", "`", "\"", "_", "“", "”"]
        var out = ""
        var pendingSpace = false
        for c in text.lowercased() where !dropped.contains(c) {
            if c.isWhitespace {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(c)
            }
        }
        return out
    }
}
