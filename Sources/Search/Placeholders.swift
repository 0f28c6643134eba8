/// `{name}` placeholders in judge templates. Rendering is one pass over the template, so text put in
/// (a question or candidate that itself contains "{candidate2}") is never substituted again.
enum Placeholders {
    /// Names of all `{identifier}` placeholders in `template`, in order of appearance.
    static func names(in template: String) -> [String] {
        var names: [String] = []
        scan(template) { piece in
            if case .placeholder(let name) = piece { names.append(name) }
        }
        return names
    }

    /// `template` with each `{name}` that has a value replaced by it; other text is kept as written.
    static func render(_ template: String, _ values: [String: String]) -> String {
        var out = ""
        scan(template) { piece in
            switch piece {
            case .text(let text): out += text
            case .placeholder(let name): out += values[name] ?? "{\(name)}"
            }
        }
        return out
    }

    enum Piece {
        case text(Substring)
        case placeholder(String)
    }

    /// Splits into literal text and placeholders. A placeholder is `{` + [A-Za-z_][A-Za-z0-9_]* + `}`;
    /// any other brace is literal text.
    static func scan(_ template: String, _ body: (Piece) -> Void) {
        var textStart = template.startIndex
        var i = template.startIndex
        while i < template.endIndex {
            guard template[i] == "{" else {
                i = template.index(after: i)
                continue
            }
            var j = template.index(after: i)
            while j < template.endIndex, isIdentifier(template[j], first: j == template.index(after: i)) {
                j = template.index(after: j)
            }
            if j < template.endIndex, template[j] == "}", j > template.index(after: i) {
                if textStart < i { body(.text(template[textStart..<i])) }
                body(.placeholder(String(template[template.index(after: i)..<j])))
                i = template.index(after: j)
                textStart = i
            } else {
                i = template.index(after: i)
            }
        }
        if textStart < template.endIndex { body(.text(template[textStart...])) }
    }

    static func isIdentifier(_ c: Character, first: Bool) -> Bool {
        guard c.isASCII else { return false }
        if c == "_" || c.isLetter { return true }
        return !first && c.isNumber
    }
}
