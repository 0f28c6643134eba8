import Foundation

/// The filters, tests, methods and global functions the supported Jinja subset provides, with the
/// behaviour of jinja2 and Python (and transformers' `tojson`, `raise_exception`, `strftime_now`).
enum JinjaBuiltins {
    private static func fail(_ message: String) -> ChatTemplateError { ChatTemplateError(.runtime, message) }

    // MARK: Globals

    static func global(_ name: String, now: Date) -> JinjaValue? {
        switch name {
        case "raise_exception":
            return .function(
                JinjaFunction(name: name) { args, _ in
                    throw ChatTemplateError(.exception, args.first?.pythonString ?? "raise_exception called")
                })
        case "strftime_now":
            return .function(
                JinjaFunction(name: name) { args, _ in
                    guard case .string(let format)? = args.first else { throw fail("strftime_now needs a format string") }
                    return .string(strftime(format, now))
                })
        case "range":
            return .function(
                JinjaFunction(name: name) { args, _ in
                    let ints = try args.map { v -> Int in
                        guard let i = v.integerIndex else { throw fail("range() arguments must be integers") }
                        return i
                    }
                    switch ints.count {
                    case 1: return .list((0..<max(0, ints[0])).map { .int($0) })
                    case 2: return .list(ints[0] < ints[1] ? (ints[0]..<ints[1]).map { .int($0) } : [])
                    case 3:
                        guard ints[2] != 0 else { throw fail("range() step must not be zero") }
                        return .list(Array(stride(from: ints[0], to: ints[1], by: ints[2])).map { .int($0) })
                    default: throw fail("range() takes 1 to 3 arguments")
                    }
                })
        case "namespace", "dict":
            return .function(
                JinjaFunction(name: name) { args, kwargs in
                    var d = JinjaDict()
                    for arg in args {
                        guard case .dict(let initial) = arg else { throw fail("\(name)() takes keyword arguments or a dict") }
                        for key in initial.keys { d[key] = initial[key] }
                    }
                    for (key, value) in kwargs { d[key] = value }
                    return name == "dict" ? .dict(d) : .namespace(JinjaNamespace(d))
                })
        default:
            return nil
        }
    }

    /// Python's `datetime.strftime` for the common directives (C locale).
    static func strftime(_ format: String, _ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let months = [
            "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"
        ]
        let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var out = ""
        var it = format.makeIterator()
        while let ch = it.next() {
            guard ch == "%", let d = it.next() else {
                out.append(ch)
                continue
            }
            switch d {
            case "d": out += two(c.day!)
            case "m": out += two(c.month!)
            case "Y": out += String(c.year!)
            case "y": out += two(c.year! % 100)
            case "b": out += String(months[c.month! - 1].prefix(3))
            case "B": out += months[c.month! - 1]
            case "a": out += String(days[c.weekday! - 1].prefix(3))
            case "A": out += days[c.weekday! - 1]
            case "H": out += two(c.hour!)
            case "I": out += two(c.hour! % 12 == 0 ? 12 : c.hour! % 12)
            case "p": out += c.hour! < 12 ? "AM" : "PM"
            case "M": out += two(c.minute!)
            case "S": out += two(c.second!)
            case "j":
                let day = calendar.ordinality(of: .day, in: .year, for: date)!
                out += day < 10 ? "00\(day)" : day < 100 ? "0\(day)" : "\(day)"
            case "%": out += "%"
            default: out += "%\(d)"
            }
        }
        return out
    }

    // MARK: Methods

    /// A bound method of `value`, when `name` is one (Python resolves methods before items).
    static func method(_ name: String, of value: JinjaValue) -> JinjaValue? {
        func bound(_ body: @escaping ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue) -> JinjaValue {
            .function(JinjaFunction(name: "\(value.typeName).\(name)", call: body))
        }
        func stringArg(_ args: [JinjaValue], _ i: Int) -> String? {
            if i < args.count, case .string(let s) = args[i] { return s }
            return nil
        }
        switch value {
        case .string(let s):
            switch name {
            case "strip", "lstrip", "rstrip":
                return bound { args, _ in
                    .string(pythonStrip(s, chars: stringArg(args, 0), left: name != "rstrip", right: name != "lstrip"))
                }
            case "upper": return bound { _, _ in .string(s.uppercased()) }
            case "lower": return bound { _, _ in .string(s.lowercased()) }
            case "title": return bound { _, _ in .string(pythonTitle(s)) }
            case "capitalize": return bound { _, _ in .string(pythonCapitalize(s)) }
            case "startswith", "endswith":
                return bound { args, _ in
                    let candidates: [String]
                    switch args.first {
                    case .string(let p)?: candidates = [p]
                    case .list(let items)?: candidates = items.compactMap { if case .string(let p) = $0 { return p } else { return nil } }
                    default: throw fail("\(name)() needs a string or a tuple of strings")
                    }
                    let bytes = Array(s.utf8)
                    return .bool(
                        candidates.contains { p in
                            let pb = Array(p.utf8)
                            return name == "startswith" ? bytes.starts(with: pb) : bytes.reversed().starts(with: pb.reversed())
                        })
                }
            case "split":
                return bound { args, kwargs in
                    let sep =
                        stringArg(args, 0)
                        ?? kwargs.first { $0.0 == "sep" }.flatMap { if case .string(let x) = $0.1 { return x } else { return nil } }
                    let maxSplit = (args.count > 1 ? args[1] : kwargs.first { $0.0 == "maxsplit" }?.1)?.integerIndex ?? -1
                    return .list(pythonSplit(s, sep, maxSplit).map { .string($0) })
                }
            case "replace":
                return bound { args, _ in
                    guard let old = stringArg(args, 0), let new = stringArg(args, 1) else { throw fail("replace() needs two strings") }
                    return .string(pythonReplace(s, old, new, count: args.count > 2 ? args[2].integerIndex ?? -1 : -1))
                }
            case "find":
                return bound { args, _ in
                    guard let needle = stringArg(args, 0) else { throw fail("find() needs a string") }
                    guard let byteOffset = pythonFind(needle, in: s) else { return .int(-1) }
                    return .int(String(decoding: Array(s.utf8)[..<byteOffset], as: UTF8.self).unicodeScalars.count)
                }
            case "join":
                return bound { args, _ in
                    guard let items = args.first else { throw fail("join() needs an iterable") }
                    return .string(try iterateValues(items).map(\.pythonString).joined(separator: s))
                }
            default: return nil
            }
        case .dict(let d):
            switch name {
            case "items": return bound { _, _ in .list(d.keys.map { .list([.string($0), d[$0]!]) }) }
            case "keys": return bound { _, _ in .list(d.keys.map { .string($0) }) }
            case "values": return bound { _, _ in .list(d.keys.map { d[$0]! }) }
            case "get":
                return bound { args, _ in
                    guard case .string(let key)? = args.first else { return args.count > 1 ? args[1] : .none }
                    return d[key] ?? (args.count > 1 ? args[1] : .none)
                }
            default: return nil
            }
        case .list:
            switch name {
            case "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse":
                // transformers renders with jinja2's ImmutableSandboxedEnvironment, which forbids these.
                return bound { _, _ in throw fail("list.\(name)() would modify a list, which chat templates may not do") }
            default: return nil
            }
        default:
            return nil
        }
    }

    static func iterateValues(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .list(let items): return items
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw fail("'\(value.typeName)' object is not iterable")
        }
    }

    // MARK: Filters

    static func filter(
        _ name: String, _ value: JinjaValue, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)],
        _ interpreter: JinjaInterpreter, at position: SourcePosition
    ) throws -> JinjaValue {
        func arg(_ i: Int, _ key: String) -> JinjaValue? {
            if i < args.count { return args[i] }
            return kwargs.first { $0.0 == key }?.1
        }
        func stringArg(_ i: Int, _ key: String) -> String? {
            if case .string(let s)? = arg(i, key) { return s }
            return nil
        }
        switch name {
        case "trim":
            return .string(pythonStrip(value.pythonString, chars: stringArg(0, "chars"), left: true, right: true))
        case "length", "count":
            switch value {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.keys.count)
            case .undefined: return .int(0)
            default: throw fail("object of type '\(value.typeName)' has no len()")
            }
        case "tojson":
            if let ascii = arg(0, "ensure_ascii"), ascii.truthy { throw fail("tojson(ensure_ascii=true) is not supported") }
            var separators: (String, String)?
            if case .list(let pair)? = arg(2, "separators"), pair.count == 2, case .string(let a) = pair[0], case .string(let b) = pair[1] {
                separators = (a, b)
            }
            let indent = arg(1, "indent")?.integerIndex
            return .string(try pythonJSON(value, indent: indent, separators: separators, sortKeys: arg(3, "sort_keys")?.truthy ?? false))
        case "upper": return .string(value.pythonString.uppercased())
        case "lower": return .string(value.pythonString.lowercased())
        case "capitalize": return .string(pythonCapitalize(value.pythonString))
        case "title": return .string(jinjaTitle(value.pythonString))
        case "default", "d":
            let fallback = arg(0, "default_value") ?? .string("")
            if value.isUndefined || (arg(1, "boolean")?.truthy == true && !value.truthy) { return fallback }
            return value
        case "join":
            var items = try iterateValues(value)
            if let attribute = stringArg(1, "attribute") {
                items = try items.map { try interpreter.attribute(of: $0, attribute, at: position) }
            }
            return .string(items.map(\.pythonString).joined(separator: stringArg(0, "d") ?? ""))
        case "first":
            return try iterateValues(value).first ?? .undefined("first of an empty sequence")
        case "last":
            return try iterateValues(value).last ?? .undefined("last of an empty sequence")
        case "list":
            return .list(try iterateValues(value))
        case "string", "safe":
            return name == "safe" ? value : .string(value.pythonString)
        case "int":
            switch value {
            case .int, .bool: return .int(value.integerIndex!)
            case .double(let d): return .int(Int(d))
            case .string(let s):
                if let i = Int(s.trimmingCharacters(in: .whitespaces)) { return .int(i) }
                if let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .int(Int(d)) }
                return arg(0, "default") ?? .int(0)
            default: return arg(0, "default") ?? .int(0)
            }
        case "float":
            if let n = value.numeric { return .double(n) }
            if case .string(let s) = value, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .double(d) }
            return arg(0, "default") ?? .double(0)
        case "abs":
            switch value {
            case .int(let v): return .int(abs(v))
            case .double(let v): return .double(abs(v))
            default: throw fail("bad operand type for abs(): '\(value.typeName)'")
            }
        case "round":
            guard let v = value.numeric else { throw fail("round needs a number") }
            let precision = arg(0, "precision")?.integerIndex ?? 0
            let scale = pow(10, Double(precision))
            return .double((v * scale).rounded(.toNearestOrAwayFromZero) / scale)
        case "replace":
            guard let old = stringArg(0, "old"), let new = stringArg(1, "new") else { throw fail("replace needs two strings") }
            return .string(pythonReplace(value.pythonString, old, new, count: arg(2, "count")?.integerIndex ?? -1))
        case "items":
            guard case .dict(let d) = value else {
                if value.isUndefined { return .list([]) }
                throw fail("items needs a mapping, got '\(value.typeName)'")
            }
            return .list(d.keys.map { .list([.string($0), d[$0]!]) })
        case "dictsort":
            guard case .dict(let d) = value else { throw fail("dictsort needs a mapping") }
            let keys = d.keys.sorted { $0.lowercased().unicodeScalars.lexicographicallyPrecedes($1.lowercased().unicodeScalars) }
            return .list(keys.map { .list([.string($0), d[$0]!]) })
        case "reverse":
            if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .list(try iterateValues(value).reversed())
        case "sort":
            let attribute = stringArg(2, "attribute")
            let caseSensitive = arg(1, "case_sensitive")?.truthy ?? false
            var keyed = try iterateValues(value).map { item -> (JinjaValue, JinjaValue) in
                var key = try attribute.map { try interpreter.attribute(of: item, $0, at: position) } ?? item
                if !caseSensitive, case .string(let s) = key { key = .string(s.lowercased()) }
                return (key, item)
            }
            var failure: ChatTemplateError?
            keyed.sort { a, b in
                if let x = a.0.numeric, let y = b.0.numeric { return x < y }
                if case .string(let x) = a.0, case .string(let y) = b.0 {
                    return x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars)
                }
                failure = fail("cannot sort '\(a.0.typeName)' and '\(b.0.typeName)'")
                return false
            }
            if let failure { throw failure }
            if arg(0, "reverse")?.truthy == true { keyed.reverse() }
            return .list(keyed.map(\.1))
        case "unique":
            // Case-insensitive, keeping the first of each, as jinja2's default.
            var out: [JinjaValue] = []
            var keys: [JinjaValue] = []
            for item in try iterateValues(value) {
                let key: JinjaValue = { if case .string(let s) = item { return .string(s.lowercased()) } else { return item } }()
                if !keys.contains(where: { $0.equals(key) }) { keys.append(key); out.append(item) }
            }
            return .list(out)
        case "map":
            let items = try iterateValues(value)
            if let attribute = kwargs.first(where: { $0.0 == "attribute" })?.1.pythonString {
                return .list(
                    try items.map { item in
                        let v = try interpreter.attribute(of: item, attribute, at: position)
                        if v.isUndefined, let d = kwargs.first(where: { $0.0 == "default" })?.1 { return d }
                        return v
                    })
            }
            guard case .string(let filterName)? = args.first, JinjaParser.filters.contains(filterName) else {
                throw fail("map needs attribute= or the name of a supported filter")
            }
            return .list(try items.map { try filter(filterName, $0, Array(args.dropFirst()), [], interpreter, at: position) })
        case "select", "reject", "selectattr", "rejectattr":
            let byAttribute = name.hasSuffix("attr")
            var rest = args
            var attribute: String?
            if byAttribute {
                guard case .string(let a)? = rest.first else { throw fail("\(name) needs an attribute name") }
                attribute = a
                rest.removeFirst()
            }
            var testName: String?
            if case .string(let t)? = rest.first {
                guard JinjaParser.tests.contains(t) else { throw fail("unsupported test \"\(t)\"") }
                testName = t
                rest.removeFirst()
            }
            let keep = name.hasPrefix("select")
            return .list(
                try iterateValues(value).filter { item in
                    let subject = try attribute.map { try interpreter.attribute(of: item, $0, at: position) } ?? item
                    let passed = try testName.map { try test($0, subject, rest, interpreter, at: position) } ?? subject.truthy
                    return passed == keep
                })
        case "indent":
            let width = arg(0, "width")?.integerIndex ?? 4
            let first = arg(1, "first")?.truthy ?? false
            let blank = arg(2, "blank")?.truthy ?? false
            let pad = String(repeating: " ", count: width)
            let lines = value.pythonString.split(separator: "\n", omittingEmptySubsequences: false)
            return .string(
                lines.enumerated().map { i, line in
                    (i == 0 && !first) || (line.isEmpty && !blank) ? String(line) : pad + line
                }.joined(separator: "\n"))
        case "wordcount":
            return .int(value.pythonString.split { !$0.isLetter && !$0.isNumber && $0 != "_" }.count)
        case "sum":
            var total: JinjaValue = arg(1, "start") ?? .int(0)
            for item in try iterateValues(value) {
                let v = try stringArg(0, "attribute").map { try interpreter.attribute(of: item, $0, at: position) } ?? item
                guard let a = total.numeric, let b = v.numeric else { throw fail("sum needs numbers") }
                if total.integerIndex != nil, v.integerIndex != nil {
                    total = .int(total.integerIndex! + v.integerIndex!)
                } else {
                    total = .double(a + b)
                }
            }
            return total
        default:
            throw fail("unsupported filter \(name)")
        }
    }

    // MARK: Tests

    static func test(
        _ name: String, _ value: JinjaValue, _ args: [JinjaValue], _ interpreter: JinjaInterpreter,
        at position: SourcePosition
    ) throws -> Bool {
        func other() throws -> JinjaValue {
            guard let a = args.first else { throw fail("test \(name) needs an argument") }
            return a
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "string": if case .string = value { return true } else { return false }
        case "number": return value.numeric != nil
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "mapping": if case .dict = value { return true } else { return false }
        case "callable": if case .function = value { return true } else { return false }
        case "iterable", "sequence":
            switch value {
            case .string, .list, .dict, .undefined: return true
            default: return false
            }
        case "even", "odd":
            guard let i = value.integerIndex else { throw fail("test \(name) needs an integer") }
            return (i % 2 == 0) == (name == "even")
        case "divisibleby":
            guard let i = value.integerIndex, let d = try other().integerIndex, d != 0 else { throw fail("divisibleby needs integers") }
            return i % d == 0
        case "eq", "equalto", "==": return value.equals(try other())
        case "ne", "!=": return !value.equals(try other())
        case "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=":
            let op = ["lt": "<", "lessthan": "<", "le": "<=", "gt": ">", "greaterthan": ">", "ge": ">="][name] ?? name
            let expr = JinjaExpr(
                kind: .compare(
                    JinjaExpr(kind: .literal(value), position: position),
                    [(op, JinjaExpr(kind: .literal(try other()), position: position))]), position: position)
            return try interpreter.evaluate(expr).truthy
        case "in": return try interpreter.contains(try other(), value, at: position)
        case "lower": if case .string(let s) = value { return s == s.lowercased() } else { return false }
        case "upper": if case .string(let s) = value { return s == s.uppercased() } else { return false }
        case "sameas":
            let b = try other()
            switch (value, b) {
            case (.namespace(let x), .namespace(let y)): return x === y
            case (.none, .none), (.undefined, .undefined): return true
            case (.bool(let x), .bool(let y)): return x == y
            default: return false
            }
        default:
            throw fail("unsupported test \(name)")
        }
    }
}

// MARK: Python string functions

/// `str.strip([chars])`: whitespace by Python's definition, or the given characters.
func pythonStrip(_ s: String, chars: String?, left: Bool, right: Bool) -> String {
    let strip: (Unicode.Scalar) -> Bool = chars.map { set in { c in set.unicodeScalars.contains(c) } } ?? isPythonSpace
    var scalars = Substring(s).unicodeScalars[...]
    if left { while let c = scalars.first, strip(c) { scalars.removeFirst() } }
    if right { while let c = scalars.last, strip(c) { scalars.removeLast() } }
    return String(String.UnicodeScalarView(scalars))
}

/// `str.split(sep=None, maxsplit=-1)`.
func pythonSplit(_ s: String, _ sep: String?, _ maxSplit: Int) -> [String] {
    var out: [String] = []
    if let sep {
        guard !sep.isEmpty else { return [s] }
        var rest = s
        while maxSplit < 0 || out.count < maxSplit, let offset = pythonFind(sep, in: rest) {
            let bytes = Array(rest.utf8)
            out.append(String(decoding: bytes[..<offset], as: UTF8.self))
            rest = String(decoding: bytes[(offset + sep.utf8.count)...], as: UTF8.self)
        }
        out.append(rest)
        return out
    }
    var scalars = Array(s.unicodeScalars)[...]
    while true {
        while let c = scalars.first, isPythonSpace(c) { scalars.removeFirst() }
        if scalars.isEmpty { return out }
        if maxSplit >= 0, out.count == maxSplit {
            var tail = scalars
            while let c = tail.last, isPythonSpace(c) { tail.removeLast() }
            out.append(String(String.UnicodeScalarView(tail)))
            return out
        }
        var word = String.UnicodeScalarView()
        while let c = scalars.first, !isPythonSpace(c) { word.append(c); scalars.removeFirst() }
        out.append(String(word))
    }
}

/// `str.capitalize()`: the first character in title case, the rest lower.
func pythonCapitalize(_ s: String) -> String {
    guard let first = s.unicodeScalars.first else { return s }
    return first.properties.titlecaseMapping + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased()
}

/// `str.title()`: a cased character after an uncased one starts a word.
func pythonTitle(_ s: String) -> String {
    var out = ""
    var previousCased = false
    for c in s.unicodeScalars {
        out += previousCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping
        previousCased = c.properties.isCased
    }
    return out
}

/// jinja2's `title` filter: words start after `-`, whitespace, or an opening bracket.
func jinjaTitle(_ s: String) -> String {
    var out = ""
    var atWordStart = true
    for c in s.unicodeScalars {
        if c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || isPythonSpace(c) {
            out.unicodeScalars.append(c)
            atWordStart = true
        } else {
            out += atWordStart ? c.properties.uppercaseMapping : c.properties.lowercaseMapping
            atWordStart = false
        }
    }
    return out
}
