import Foundation

/// A value inside a chat template, with Python's semantics where templates can see them
/// (str() and repr() output, truthiness, equality by code points, ordered dicts).
enum JinjaValue: @unchecked Sendable {
    /// A missing variable, attribute or item; `name` is kept for the error when it is used wrongly.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// Python lists and tuples.
    case list([JinjaValue])
    case dict(JinjaDict)
    /// `namespace(...)`: the one mutable object, shared by reference.
    case namespace(JinjaNamespace)
    case function(JinjaFunction)

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let v): return v != 0
        case .double(let v): return v != 0
        case .string(let s): return !s.isEmpty
        case .list(let l): return !l.isEmpty
        case .dict(let d): return !d.keys.isEmpty
        case .namespace, .function: return true
        }
    }

    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .function: return "function"
        }
    }

    /// Python's `str(value)`; undefined prints as nothing, as in jinja2.
    var pythonString: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return pythonRepr
        }
    }

    var pythonRepr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let v): return String(v)
        case .double(let v): return pythonFloatRepr(v)
        case .string(let s): return pythonStringRepr(s)
        case .list(let l): return "[" + l.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .dict(let d): return "{" + d.keys.map { pythonStringRepr($0) + ": " + d.values[$0]!.pythonRepr }.joined(separator: ", ") + "}"
        case .namespace(let ns):
            return "<Namespace " + ns.attributes.keys.map { "\($0)=\(ns.attributes.values[$0]!.pythonRepr)" }.joined(separator: ", ") + ">"
        case .function(let f): return "<function \(f.name)>"
        }
    }

    /// Python `==`: numbers (and booleans) by value, strings by code points, containers element-wise.
    func equals(_ other: JinjaValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (.list(let a), .list(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.dict(let a), .dict(let b)):
            return a.keys.count == b.keys.count && a.keys.allSatisfy { key in b.values[key].map { a.values[key]!.equals($0) } ?? false }
        case (.namespace(let a), .namespace(let b)): return a === b
        default:
            if let x = numeric, let y = other.numeric { return x == y }
            return false
        }
    }

    /// Numbers and booleans as Double, for comparisons (Python: True == 1).
    var numeric: Double? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let v): return Double(v)
        case .double(let v): return v
        default: return nil
        }
    }
}

/// A Python dict with string keys, in insertion order.
struct JinjaDict {
    private(set) var keys: [String] = []
    private(set) var values: [String: JinjaValue] = [:]

    init() {}

    init(_ pairs: [(String, JinjaValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    subscript(key: String) -> JinjaValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }
}

final class JinjaNamespace {
    var attributes: JinjaDict
    init(_ attributes: JinjaDict) { self.attributes = attributes }
}

/// A global function or a bound method: positional and keyword arguments in, a value out.
struct JinjaFunction {
    let name: String
    let call: ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation for exponents from
/// -4 to 15 and scientific notation (`1e+16`, `1e-05`) otherwise.
func pythonFloatRepr(_ v: Double) -> String {
    if v.isNaN { return "nan" }
    if v.isInfinite { return v < 0 ? "-inf" : "inf" }
    if v == 0 { return v.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description also prints the shortest round-tripping digits; take them apart.
    var text = "\(abs(v))"
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(text[text.index(after: e)...])!
        text = String(text[..<e])
    }
    var digits = text.replacingOccurrences(of: ".", with: "")
    let pointPosition = (text.firstIndex(of: ".").map { text.distance(from: text.startIndex, to: $0) } ?? text.count) + exponent
    // Normalize to digits d1 d2 … with the decimal exponent of d1.
    let leadingZeros = digits.prefix { $0 == "0" }.count
    digits.removeFirst(leadingZeros)
    while digits.count > 1, digits.last == "0" { digits.removeLast() }
    let decimalExponent = pointPosition - leadingZeros - 1
    let sign = v < 0 ? "-" : ""
    if decimalExponent >= -4, decimalExponent < 16 {
        if decimalExponent >= 0 {
            let intCount = decimalExponent + 1
            if digits.count <= intCount {
                return sign + digits + String(repeating: "0", count: intCount - digits.count) + ".0"
            }
            return sign + digits.prefix(intCount) + "." + digits.dropFirst(intCount)
        }
        return sign + "0." + String(repeating: "0", count: -decimalExponent - 1) + digits
    }
    let mantissa = digits.count == 1 ? digits : digits.prefix(1) + "." + digits.dropFirst()
    let e = abs(decimalExponent)
    return sign + mantissa + "e" + (decimalExponent < 0 ? "-" : "+") + (e < 10 ? "0" : "") + String(e)
}

/// Python's `repr(str)`: single quotes unless the text has ' and no ", escapes for the unprintable.
func pythonStringRepr(_ s: String) -> String {
    let quote: Unicode.Scalar = s.unicodeScalars.contains("'") && !s.unicodeScalars.contains("\"") ? "\"" : "'"
    var out = String.UnicodeScalarView()
    out.append(quote)
    for c in s.unicodeScalars {
        switch c {
        case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case quote: out.append("\\"); out.append(c)
        default:
            if isPythonPrintable(c) {
                out.append(c)
            } else {
                let hex = String(c.value, radix: 16)
                let escape =
                    c.value < 0x100
                    ? "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
                    : c.value < 0x10000
                        ? "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                        : "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
                out.append(contentsOf: escape.unicodeScalars)
            }
        }
    }
    out.append(quote)
    return String(out)
}

private func isPythonPrintable(_ c: Unicode.Scalar) -> Bool {
    if c == " " { return true }
    switch c.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator: return false
    default: return true
    }
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=…, separators=…, sort_keys=…)`, which is
/// what transformers installs as the `tojson` filter.
func pythonJSON(_ value: JinjaValue, indent: Int?, separators: (item: String, key: String)?, sortKeys: Bool) throws -> String {
    let itemSeparator = separators?.item ?? (indent == nil ? ", " : ",")
    let keySeparator = separators?.key ?? ": "
    var out = ""
    func write(_ v: JinjaValue, level: Int) throws {
        switch v {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            out += d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : pythonFloatRepr(d)
        case .string(let s): out += jsonString(s)
        case .list(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1)
                try write(item, level: level + 1)
            }
            newline(level)
            out += "]"
        case .dict(let d):
            if d.keys.isEmpty { out += "{}"; return }
            out += "{"
            for (i, key) in (sortKeys ? d.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) } : d.keys)
                .enumerated()
            {
                if i > 0 { out += itemSeparator }
                newline(level + 1)
                out += jsonString(key) + keySeparator
                try write(d[key]!, level: level + 1)
            }
            newline(level)
            out += "}"
        case .undefined, .namespace, .function:
            throw ChatTemplateError(.runtime, "Object of type \(v.typeName) is not JSON serializable")
        }
    }
    func newline(_ level: Int) {
        if let indent { out += "\n" + String(repeating: " ", count: indent * level) }
    }
    try write(value, level: 0)
    return out
}

private func jsonString(_ s: String) -> String {
    var out = String.UnicodeScalarView()
    out.append("\"")
    for c in s.unicodeScalars {
        switch c {
        case "\"": out.append(contentsOf: "\\\"".unicodeScalars)
        case "\\": out.append(contentsOf: "\\\\".unicodeScalars)
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case "\u{08}": out.append(contentsOf: "\\b".unicodeScalars)
        case "\u{0C}": out.append(contentsOf: "\\f".unicodeScalars)
        default:
            if c.value < 0x20 {
                let hex = String(c.value, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
            } else {
                out.append(c)
            }
        }
    }
    out.append("\"")
    return String(out)
}
