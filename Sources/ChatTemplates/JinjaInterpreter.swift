import Foundation

/// Renders a parsed chat template. Scoping follows jinja2: each for-loop iteration gets its own scope
/// (a `set` inside a loop is gone after it, which is why templates use `namespace`), `if` blocks do not.
final class JinjaInterpreter {
    private var scopes: [[String: JinjaValue]]
    private let now: Date

    private enum Flow { case normal, breakLoop, continueLoop }

    init(context: [String: JinjaValue], now: Date) {
        scopes = [context]
        self.now = now
    }

    func render(_ nodes: [JinjaNode]) throws -> String {
        var out = ""
        _ = try execute(nodes, into: &out)
        return out
    }

    func error(_ message: String, at position: SourcePosition) -> ChatTemplateError {
        ChatTemplateError(.runtime, "chat template \(position): \(message)")
    }

    // MARK: Statements

    private func execute(_ nodes: [JinjaNode], into out: inout String) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let text):
                out += text
            case .output(let expr):
                out += try evaluate(expr).pythonString
            case .conditional(let branches, let otherwise):
                var taken = false
                for branch in branches where try evaluate(branch.test).truthy {
                    taken = true
                    let flow = try execute(branch.body, into: &out)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try execute(otherwise, into: &out)
                    if flow != .normal { return flow }
                }
            case .loop(let targets, let iterable, let filter, let body, let otherwise, let position):
                try runLoop(
                    targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, position: position, into: &out)
            case .assign(let targets, let valueExpr, let position):
                let value = try evaluate(valueExpr)
                for (name, v) in try unpack(value, into: targets, at: position) { scopes[scopes.count - 1][name] = v }
            case .assignAttribute(let object, let attribute, let valueExpr, let position):
                guard case .namespace(let ns) = lookup(object) else {
                    throw error("cannot set attribute \"\(attribute)\" on \(object), which is not a namespace", at: position)
                }
                ns.attributes[attribute] = try evaluate(valueExpr)
            case .assignBlock(let name, let body):
                var captured = ""
                _ = try execute(body, into: &captured)
                scopes[scopes.count - 1][name] = .string(captured)
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            }
        }
        return .normal
    }

    private func unpack(_ value: JinjaValue, into targets: [String], at position: SourcePosition) throws -> [(String, JinjaValue)] {
        if targets.count == 1 { return [(targets[0], value)] }
        let items = try iterate(value, at: position)
        guard items.count == targets.count else {
            throw error("cannot unpack \(items.count) values into \(targets.count) names", at: position)
        }
        return Array(zip(targets, items))
    }

    private func runLoop(
        targets: [String], iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode],
        position: SourcePosition, into out: inout String
    ) throws {
        var items = try iterate(evaluate(iterable), at: iterable.position)
        if let filter {
            items = try items.filter { item in
                scopes.append(Dictionary(uniqueKeysWithValues: try unpack(item, into: targets, at: position)))
                defer { scopes.removeLast() }
                return try evaluate(filter).truthy
            }
        }
        if items.isEmpty {
            _ = try execute(otherwise, into: &out)
            return
        }
        for (i, item) in items.enumerated() {
            var scope = Dictionary(uniqueKeysWithValues: try unpack(item, into: targets, at: position))
            scope["loop"] = .dict(
                JinjaDict([
                    ("index", .int(i + 1)), ("index0", .int(i)),
                    ("revindex", .int(items.count - i)), ("revindex0", .int(items.count - i - 1)),
                    ("first", .bool(i == 0)), ("last", .bool(i == items.count - 1)), ("length", .int(items.count)),
                    ("previtem", i > 0 ? items[i - 1] : .undefined("loop.previtem")),
                    ("nextitem", i + 1 < items.count ? items[i + 1] : .undefined("loop.nextitem")),
                    ("depth", .int(1)), ("depth0", .int(0))
                ]))
            scopes.append(scope)
            let flow = try execute(body, into: &out)
            scopes.removeLast()
            if flow == .breakLoop { break }
        }
    }

    func iterate(_ value: JinjaValue, at position: SourcePosition) throws -> [JinjaValue] {
        switch value {
        case .list(let items): return items
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw error("'\(value.typeName)' object is not iterable", at: position)
        }
    }

    private func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() {
            if let v = scope[name] { return v }
        }
        return JinjaBuiltins.global(name, now: now) ?? .undefined(name)
    }

    // MARK: Expressions

    func evaluate(_ expr: JinjaExpr) throws -> JinjaValue {
        let at = expr.position
        switch expr.kind {
        case .literal(let v):
            return v
        case .name(let name):
            return lookup(name)
        case .list(let items):
            return .list(try items.map(evaluate))
        case .dict(let pairs):
            var d = JinjaDict()
            for pair in pairs {
                guard case .string(let key) = try evaluate(pair.key) else {
                    throw error("only string keys are supported in dict literals", at: pair.key.position)
                }
                d[key] = try evaluate(pair.value)
            }
            return .dict(d)
        case .attribute(let base, let name):
            return try attribute(of: evaluate(base), name, at: at)
        case .item(let base, let index):
            return try item(of: evaluate(base), evaluate(index), at: at)
        case .slice(let base, let start, let stop, let step):
            return try slice(evaluate(base), start.map(evaluate), stop.map(evaluate), step.map(evaluate), at: at)
        case .call(let callee, let args, let kwargs):
            let f = try evaluate(callee)
            let values = try args.map(evaluate)
            let named = try kwargs.map { ($0.name, try evaluate($0.value)) }
            switch f {
            case .function(let function):
                // Builtins report errors without a position; add the call's.
                do {
                    return try function.call(values, named)
                } catch let e as ChatTemplateError where e.code == .runtime && !e.message.hasPrefix("chat template") {
                    throw error(e.message, at: at)
                }
            case .undefined(let name):
                throw error("'\(name)' is undefined", at: at)
            default:
                throw error("'\(f.typeName)' object is not callable", at: at)
            }
        case .filter(let base, let name, let args, let kwargs):
            let value = try evaluate(base)
            let named = try kwargs.map { ($0.name, try evaluate($0.value)) }
            do {
                return try JinjaBuiltins.filter(name, value, try args.map(evaluate), named, self, at: at)
            } catch let e as ChatTemplateError where e.code == .runtime && !e.message.hasPrefix("chat template") {
                throw error("filter \(name): \(e.message)", at: at)
            }
        case .test(let base, let name, let args, let negated):
            let result = try JinjaBuiltins.test(name, evaluate(base), try args.map(evaluate), self, at: at)
            return .bool(result != negated)
        case .not(let e):
            return .bool(!(try evaluate(e).truthy))
        case .negate(let e):
            switch try evaluate(e) {
            case .int(let v): return .int(-v)
            case .double(let v): return .double(-v)
            case .bool(let b): return .int(b ? -1 : 0)
            case let v: throw error("bad operand type for unary -: '\(v.typeName)'", at: at)
            }
        case .and(let a, let b):
            let left = try evaluate(a)
            return left.truthy ? try evaluate(b) : left
        case .or(let a, let b):
            let left = try evaluate(a)
            return left.truthy ? left : try evaluate(b)
        case .binary(let op, let a, let b):
            return try binary(op, evaluate(a), evaluate(b), at: at)
        case .compare(let first, let rest):
            var left = try evaluate(first)
            for (op, operandExpr) in rest {
                let right = try evaluate(operandExpr)
                guard try compare(op, left, right, at: at) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let then, let test, let otherwise):
            if try evaluate(test).truthy { return try evaluate(then) }
            return try otherwise.map(evaluate) ?? .undefined("conditional expression")
        }
    }

    private func undefinedError(_ v: JinjaValue, at position: SourcePosition) -> ChatTemplateError? {
        if case .undefined(let name) = v { return error("'\(name)' is undefined", at: position) }
        return nil
    }

    /// jinja2's `getattr`: the Python attribute (a method) first, then the item.
    func attribute(of value: JinjaValue, _ name: String, at position: SourcePosition) throws -> JinjaValue {
        if let e = undefinedError(value, at: position) { throw e }
        if let method = JinjaBuiltins.method(name, of: value) { return method }
        switch value {
        case .dict(let d): return d[name] ?? .undefined(name)
        case .namespace(let ns): return ns.attributes[name] ?? .undefined(name)
        default: return .undefined(name)
        }
    }

    /// jinja2's `getitem`: the item first, then for a string key the attribute.
    func item(of value: JinjaValue, _ key: JinjaValue, at position: SourcePosition) throws -> JinjaValue {
        if let e = undefinedError(value, at: position) { throw e }
        switch (value, key) {
        case (.dict(let d), .string(let k)):
            if let v = d[k] { return v }
        case (.namespace(let ns), .string(let k)):
            if let v = ns.attributes[k] { return v }
        case (.list(let items), _):
            if let i = key.integerIndex, let j = pythonIndex(i, count: items.count) { return items[j] }
        case (.string(let s), _):
            if let i = key.integerIndex {
                let scalars = Array(s.unicodeScalars)
                if let j = pythonIndex(i, count: scalars.count) { return .string(String(scalars[j])) }
            }
        default:
            break
        }
        if case .string(let name) = key, let method = JinjaBuiltins.method(name, of: value) { return method }
        return .undefined("\(value.typeName) object has no element \(key.pythonRepr)")
    }

    private func pythonIndex(_ i: Int, count: Int) -> Int? {
        let j = i < 0 ? i + count : i
        return j >= 0 && j < count ? j : nil
    }

    private func slice(_ value: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?, at position: SourcePosition)
        throws -> JinjaValue
    {
        if let e = undefinedError(value, at: position) { throw e }
        func bound(_ v: JinjaValue?) throws -> Int? {
            guard let v, !(v.isNone) else { return nil }
            guard let i = v.integerIndex else { throw error("slice indices must be integers or none", at: position) }
            return i
        }
        let step = try bound(step) ?? 1
        guard step != 0 else { throw error("slice step cannot be zero", at: position) }
        func indices(_ count: Int) throws -> [Int] {
            func clamp(_ i: Int?, _ defaultValue: Int) -> Int {
                guard var i else { return defaultValue }
                if i < 0 { i += count }
                return step > 0 ? min(max(i, 0), count) : min(max(i, -1), count - 1)
            }
            let from = clamp(try bound(start), step > 0 ? 0 : count - 1)
            let to = clamp(try bound(stop), step > 0 ? count : -1)
            return Array(stride(from: from, to: to, by: step))
        }
        switch value {
        case .list(let items): return .list(try indices(items.count).map { items[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var view = String.UnicodeScalarView()
            for i in try indices(scalars.count) { view.append(scalars[i]) }
            return .string(String(view))
        default: throw error("'\(value.typeName)' object is not subscriptable", at: position)
        }
    }

    private func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue, at position: SourcePosition) throws -> JinjaValue {
        if op == "~" { return .string(a.pythonString + b.pythonString) }
        if let e = undefinedError(a, at: position) ?? undefinedError(b, at: position) { throw e }
        switch (op, a, b) {
        case ("+", .string(let x), .string(let y)): return .string(x + y)
        case ("+", .list(let x), .list(let y)): return .list(x + y)
        case ("*", .string(let x), _) where b.integerIndex != nil: return .string(String(repeating: x, count: max(0, b.integerIndex!)))
        case ("*", .list(let x), _) where b.integerIndex != nil:
            return .list(Array(repeating: x, count: max(0, b.integerIndex!)).flatMap { $0 })
        default: break
        }
        let bothInts = a.integerIndex != nil && b.integerIndex != nil
        guard let x = a.numeric, let y = b.numeric else {
            throw error("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'", at: position)
        }
        if bothInts {
            let i = a.integerIndex!, j = b.integerIndex!
            switch op {
            case "+": return .int(i &+ j)
            case "-": return .int(i &- j)
            case "*": return .int(i &* j)
            case "//", "%":
                guard j != 0 else { throw error("integer division or modulo by zero", at: position) }
                var q = i / j
                if (i % j != 0) && ((i < 0) != (j < 0)) { q -= 1 } // Python floors
                return op == "//" ? .int(q) : .int(i - q * j)
            case "**" where j >= 0:
                var r = 1
                for _ in 0..<j { r = r &* i }
                return .int(r)
            default: break
            }
        }
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw error("division by zero", at: position) }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw error("float floor division by zero", at: position) }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw error("float modulo", at: position) }
            return .double(x - y * (x / y).rounded(.down))
        case "**": return .double(pow(x, y))
        default: throw error("unsupported operator \(op)", at: position)
        }
    }

    private func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue, at position: SourcePosition) throws -> Bool {
        switch op {
        case "==": return a.equals(b)
        case "!=": return !a.equals(b)
        case "in": return try contains(b, a, at: position)
        case "not in": return !(try contains(b, a, at: position))
        default: break
        }
        let order: Bool
        if let x = a.numeric, let y = b.numeric {
            switch op {
            case "<": order = x < y
            case "<=": order = x <= y
            case ">": order = x > y
            default: order = x >= y
            }
        } else if case .string(let x) = a, case .string(let y) = b {
            let lt = x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars)
            let gt = y.unicodeScalars.lexicographicallyPrecedes(x.unicodeScalars)
            switch op {
            case "<": order = lt
            case "<=": order = !gt
            case ">": order = gt
            default: order = !lt
            }
        } else {
            throw error("'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'", at: position)
        }
        return order
    }

    /// Python's `item in container`.
    func contains(_ container: JinjaValue, _ item: JinjaValue, at position: SourcePosition) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let needle) = item else {
                throw error("'in <string>' requires string as left operand, not \(item.typeName)", at: position)
            }
            return pythonFind(needle, in: s) != nil
        case .list(let items): return items.contains { $0.equals(item) }
        case .dict(let d):
            if case .string(let key) = item { return d[key] != nil }
            return false
        case .namespace(let ns):
            if case .string(let key) = item { return ns.attributes[key] != nil }
            return false
        case .undefined: return false
        default: throw error("argument of type '\(container.typeName)' is not iterable", at: position)
        }
    }
}

extension JinjaValue {
    /// Ints and booleans as an index.
    var integerIndex: Int? {
        switch self {
        case .int(let v): return v
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}

/// Byte offset of `needle` in `haystack`, comparing code points exactly (not canonical equivalence).
func pythonFind(_ needle: String, in haystack: String) -> Int? {
    let n = Array(needle.utf8), h = Array(haystack.utf8)
    if n.isEmpty { return 0 }
    guard n.count <= h.count else { return nil }
    for i in 0...(h.count - n.count) where h[i] == n[0] && h[i..<(i + n.count)].elementsEqual(n) { return i }
    return nil
}

/// Python's `str.replace(old, new, count)` on exact code points.
func pythonReplace(_ s: String, _ old: String, _ new: String, count: Int = -1) -> String {
    let h = Array(s.utf8), o = Array(old.utf8), r = Array(new.utf8)
    var out: [UInt8] = []
    var i = 0, done = 0
    if o.isEmpty {
        // Python inserts `new` between every character (and at both ends).
        var scalars = Array(s.unicodeScalars).map { Array(String($0).utf8) }
        var result: [UInt8] = []
        for k in 0...scalars.count {
            if count < 0 || done < count { result += r; done += 1 }
            if k < scalars.count { result += scalars[k] }
        }
        scalars.removeAll()
        return String(decoding: result, as: UTF8.self)
    }
    while i < h.count {
        if count < 0 || done < count, i + o.count <= h.count, h[i..<(i + o.count)].elementsEqual(o) {
            out += r
            i += o.count
            done += 1
        } else {
            out.append(h[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}
