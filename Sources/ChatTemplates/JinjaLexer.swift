/// Splits a chat template into tokens the way jinja2 does with the settings transformers uses
/// (`trim_blocks=True, lstrip_blocks=True`, trailing newline dropped): `{%- … -%}` strip whitespace,
/// a block or comment tag alone on its line takes its indentation and its newline with it.
struct JinjaToken {
    enum Kind: Equatable {
        case text(String)
        case blockBegin, blockEnd, variableBegin, variableEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case end
    }

    let kind: Kind
    let position: SourcePosition
}

/// 1-based line and column (in characters) in the template, for error messages.
struct SourcePosition: CustomStringConvertible, Sendable {
    let line: Int
    let column: Int
    var description: String { "line \(line), column \(column)" }
}

/// Python's `str.isspace()`, which jinja2's `\s` and `str.strip()` follow.
func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
    default: return false
    }
}

struct JinjaLexer {
    private let s: [Unicode.Scalar]
    private var i = 0
    private var tokens: [JinjaToken] = []
    /// Line starts (indices into `s`), for turning an index into a position.
    private let lineStarts: [Int]

    static func tokenize(_ source: String) throws -> [JinjaToken] {
        var lexer = JinjaLexer(source)
        try lexer.run()
        return lexer.tokens
    }

    private init(_ source: String) {
        // jinja2 reads every newline as "\n" and drops one trailing newline (keep_trailing_newline=False).
        var scalars: [Unicode.Scalar] = []
        var it = source.unicodeScalars.makeIterator()
        var previousCR = false
        while let c = it.next() {
            if c == "\r" {
                scalars.append("\n")
                previousCR = true
                continue
            }
            if c == "\n", previousCR {
                previousCR = false
                continue
            }
            previousCR = false
            scalars.append(c)
        }
        if scalars.last == "\n" { scalars.removeLast() }
        s = scalars
        var starts = [0]
        for (k, c) in scalars.enumerated() where c == "\n" { starts.append(k + 1) }
        lineStarts = starts
    }

    private func position(_ index: Int) -> SourcePosition {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return SourcePosition(line: lo + 1, column: index - lineStarts[lo] + 1)
    }

    private func error(_ message: String, at index: Int) -> ChatTemplateError {
        ChatTemplateError(.syntax, "chat template \(position(index)): \(message)")
    }

    private func starts(with text: String, at k: Int) -> Bool {
        var k = k
        for c in text.unicodeScalars {
            guard k < s.count, s[k] == c else { return false }
            k += 1
        }
        return true
    }

    private mutating func emit(_ kind: JinjaToken.Kind, at index: Int) {
        tokens.append(JinjaToken(kind: kind, position: position(index)))
    }

    private mutating func run() throws {
        var lineStarting = true
        while i < s.count {
            // The next tag opening: "{{", "{%" or "{#".
            var j = i
            while j + 1 < s.count, !(s[j] == "{" && (s[j + 1] == "{" || s[j + 1] == "%" || s[j + 1] == "#")) { j += 1 }
            if j + 1 >= s.count {
                emit(.text(String(String.UnicodeScalarView(s[i...]))), at: i)
                break
            }
            var text = Array(s[i..<j])
            let kind = s[j + 1]
            var k = j + 2
            let sign: Unicode.Scalar? = k < s.count && (s[k] == "-" || s[k] == "+") ? s[k] : nil
            if sign == "-" {
                while let last = text.last, isPythonSpace(last) { text.removeLast() }
            } else if sign != "+", kind != "{" {
                // lstrip_blocks: indentation alone on its line before a block or comment tag goes.
                let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                if lineStart > 0 || lineStarting, text[lineStart...].allSatisfy({ $0 == " " || $0 == "\t" }) {
                    text.removeSubrange(lineStart...)
                }
            }
            if !text.isEmpty { emit(.text(String(String.UnicodeScalarView(text))), at: i) }
            if sign != nil { k += 1 }
            if kind == "#" {
                i = try skipComment(from: k, openedAt: j)
            } else {
                emit(kind == "%" ? .blockBegin : .variableBegin, at: j)
                i = k
                try lexTag(isBlock: kind == "%", openedAt: j)
            }
            lineStarting = i > 0 && s[i - 1] == "\n"
        }
        emit(.end, at: s.count)
    }

    /// Skips a comment; returns the index after its end (and after what the end strips).
    private func skipComment(from k: Int, openedAt open: Int) throws -> Int {
        var p = k
        while p < s.count {
            if starts(with: "+#}", at: p) { return p + 3 }
            if starts(with: "-#}", at: p) { return skipSpace(from: p + 3) }
            if starts(with: "#}", at: p) { return p + 2 < s.count && s[p + 2] == "\n" ? p + 3 : p + 2 }
            p += 1
        }
        throw error("comment opened here is never closed with #}", at: open)
    }

    private func skipSpace(from k: Int) -> Int {
        var p = k
        while p < s.count, isPythonSpace(s[p]) { p += 1 }
        return p
    }

    /// Lexes the inside of `{% … %}` or `{{ … }}` up to and including its end delimiter.
    private mutating func lexTag(isBlock: Bool, openedAt open: Int) throws {
        var depth = 0 // open brackets: an end delimiter inside them is not an end
        while true {
            i = skipSpace(from: i)
            guard i < s.count else {
                throw error(
                    isBlock ? "block tag opened here is never closed with %}" : "expression opened here is never closed with }}", at: open)
            }
            if depth == 0 {
                if isBlock {
                    if starts(with: "-%}", at: i) { emit(.blockEnd, at: i); i = skipSpace(from: i + 3); return }
                    if starts(with: "+%}", at: i) { emit(.blockEnd, at: i); i += 3; return }
                    if starts(with: "%}", at: i) {
                        emit(.blockEnd, at: i)
                        i += 2
                        if i < s.count, s[i] == "\n" { i += 1 } // trim_blocks
                        return
                    }
                } else {
                    if starts(with: "-}}", at: i) { emit(.variableEnd, at: i); i = skipSpace(from: i + 3); return }
                    if starts(with: "}}", at: i) { emit(.variableEnd, at: i); i += 2; return }
                }
            }
            let c = s[i]
            let start = i
            if c == "_" || (c.properties.isAlphabetic && c.value < 0x80) {
                while i < s.count,
                    s[i] == "_" || (s[i].value < 0x80 && (s[i].properties.isAlphabetic || s[i].properties.numericType != nil))
                { i += 1 }
                emit(.name(String(String.UnicodeScalarView(s[start..<i]))), at: start)
            } else if c.value >= 0x30, c.value <= 0x39 {
                try lexNumber()
            } else if c == "'" || c == "\"" {
                try lexString(quote: c)
            } else {
                let ops = [
                    "//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".",
                    ":", "|"
                ]
                guard let op = ops.first(where: { starts(with: $0, at: i) }) else {
                    throw error("unexpected character \"\(c)\" in a tag", at: i)
                }
                if "([{".contains(op) { depth += 1 }
                if ")]}".contains(op) { depth -= 1 }
                i += op.unicodeScalars.count
                emit(.op(op), at: start)
            }
        }
    }

    private mutating func lexNumber() throws {
        let start = i
        func digits() { while i < s.count, (s[i].value >= 0x30 && s[i].value <= 0x39) || s[i] == "_" { i += 1 } }
        digits()
        var isFloat = false
        if i + 1 < s.count, s[i] == ".", s[i + 1].value >= 0x30, s[i + 1].value <= 0x39 {
            isFloat = true
            i += 1
            digits()
        }
        if i < s.count, s[i] == "e" || s[i] == "E" {
            var k = i + 1
            if k < s.count, s[k] == "+" || s[k] == "-" { k += 1 }
            if k < s.count, s[k].value >= 0x30, s[k].value <= 0x39 {
                isFloat = true
                i = k
                digits()
            }
        }
        let text = String(String.UnicodeScalarView(s[start..<i])).replacingOccurrences(of: "_", with: "")
        if isFloat, let value = Double(text) {
            emit(.float(value), at: start)
        } else if let value = Int(text) {
            emit(.integer(value), at: start)
        } else {
            throw error("number \(text) is out of range", at: start)
        }
    }

    /// A quoted string with Python's escapes (\n, \t, \\, \', \", \xHH, \uHHHH, \UHHHHHHHH, octal).
    private mutating func lexString(quote: Unicode.Scalar) throws {
        let start = i
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard i < s.count else { throw error("string literal is never closed", at: start) }
            let c = s[i]
            if c == quote { i += 1; break }
            if c != "\\" {
                out.append(c)
                i += 1
                continue
            }
            guard i + 1 < s.count else { throw error("string literal is never closed", at: start) }
            let e = s[i + 1]
            i += 2
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "\n": break // line continuation
            case "x", "u", "U":
                let count = e == "x" ? 2 : e == "u" ? 4 : 8
                guard i + count <= s.count, let v = UInt32(String(String.UnicodeScalarView(s[i..<(i + count)])), radix: 16),
                    let scalar = Unicode.Scalar(v)
                else {
                    throw error("bad \\\(e) escape in a string literal", at: i - 2)
                }
                out.append(scalar)
                i += count
            case "0"..."7":
                var v = e.value - 0x30
                var n = 1
                while n < 3, i < s.count, s[i].value >= 0x30, s[i].value <= 0x37 {
                    v = v * 8 + s[i].value - 0x30
                    i += 1
                    n += 1
                }
                out.append(Unicode.Scalar(v)!)
            default:
                out.append("\\") // Python keeps unknown escapes as written
                out.append(e)
            }
        }
        emit(.string(String(out)), at: start)
    }
}
