/// Recursive-descent parser for the supported Jinja subset, following jinja2's grammar and operator
/// precedence (filters and `is` tests bind tighter than arithmetic: `'a' + x | trim` trims x only).
/// Anything outside the subset is an error naming the construct and its position.
struct JinjaParser {
    private let tokens: [JinjaToken]
    private var k = 0

    static let filters: Set<String> = [
        "trim", "length", "count", "tojson", "upper", "lower", "capitalize", "title", "default", "d", "join",
        "first", "last", "list", "string", "int", "float", "abs", "replace", "items", "reverse", "sort", "unique",
        "map", "select", "reject", "selectattr", "rejectattr", "safe", "dictsort", "indent", "wordcount", "round", "sum"
    ]
    static let tests: Set<String> = [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false",
        "mapping", "iterable", "sequence", "callable", "even", "odd", "divisibleby", "eq", "equalto", "ne",
        "lt", "lessthan", "le", "gt", "greaterthan", "ge", "in", "lower", "upper", "sameas",
        "==", "!=", "<", "<=", ">", ">="
    ]

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let (nodes, end) = try parser.parseNodes(until: [])
        if let end { throw parser.error("unexpected {% \(end.name) %}", at: end.position) }
        return nodes
    }

    private init(tokens: [JinjaToken]) { self.tokens = tokens }

    private var current: JinjaToken { tokens[k] }

    private func error(_ message: String, at position: SourcePosition? = nil) -> ChatTemplateError {
        ChatTemplateError(.syntax, "chat template \(position ?? current.position): \(message)")
    }

    private mutating func advance() -> JinjaToken {
        defer { if k < tokens.count - 1 { k += 1 } }
        return tokens[k]
    }

    private func isOp(_ op: String) -> Bool { current.kind == .op(op) }
    private func isName(_ name: String) -> Bool { current.kind == .name(name) }

    private mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) { k += 1; return true }
        return false
    }

    private mutating func skipName(_ name: String) -> Bool {
        if isName(name) { k += 1; return true }
        return false
    }

    private mutating func expectOp(_ op: String) throws {
        guard skipOp(op) else { throw error("expected \"\(op)\", found \(describe(current))") }
    }

    private mutating func expectName() throws -> String {
        guard case .name(let name) = current.kind else { throw error("expected a name, found \(describe(current))") }
        k += 1
        return name
    }

    private mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else { throw error("expected %}, found \(describe(current))") }
        k += 1
    }

    private func describe(_ token: JinjaToken) -> String {
        switch token.kind {
        case .text: return "text"
        case .blockBegin: return "{%"
        case .blockEnd: return "%}"
        case .variableBegin: return "{{"
        case .variableEnd: return "}}"
        case .name(let n): return "\"\(n)\""
        case .string(let s): return "string \"\(s)\""
        case .integer(let v): return "\(v)"
        case .float(let v): return "\(v)"
        case .op(let o): return "\"\(o)\""
        case .end: return "the end of the template"
        }
    }

    // MARK: Statements

    /// Nodes up to a block tag named in `ends` (returned, with the parser left after its name).
    private mutating func parseNodes(until ends: Set<String>) throws -> ([JinjaNode], (name: String, position: SourcePosition)?) {
        var nodes: [JinjaNode] = []
        while true {
            let token = advance()
            switch token.kind {
            case .end:
                if !ends.isEmpty {
                    throw error(
                        "template ends inside a block; expected one of: \(ends.sorted().joined(separator: ", "))", at: token.position)
                }
                return (nodes, nil)
            case .text(let text):
                nodes.append(.text(text))
            case .variableBegin:
                nodes.append(.output(try parseTuple()))
                guard current.kind == .variableEnd else { throw error("expected }}, found \(describe(current))") }
                k += 1
            case .blockBegin:
                let position = current.position
                let name = try expectName()
                if ends.contains(name) { return (nodes, (name, position)) }
                nodes += try parseStatement(name, at: position)
            default:
                throw error("unexpected \(describe(token))", at: token.position)
            }
        }
    }

    private mutating func parseStatement(_ name: String, at position: SourcePosition) throws -> [JinjaNode] {
        switch name {
        case "if": return [try parseIf()]
        case "for": return [try parseFor(at: position)]
        case "set": return [try parseSet(at: position)]
        case "break":
            try expectBlockEnd()
            return [.breakLoop]
        case "continue":
            try expectBlockEnd()
            return [.continueLoop]
        case "generation":
            // transformers' tag marking assistant text for masks; it renders its body unchanged.
            try expectBlockEnd()
            let (body, _) = try parseNodes(until: ["endgeneration"])
            try expectBlockEnd()
            return body
        default:
            throw error(
                "unsupported statement {% \(name) %} (supported: if/elif/else, for/else, set, break, continue, generation)", at: position)
        }
    }

    private mutating func parseIf() throws -> JinjaNode {
        var branches: [(test: JinjaExpr, body: [JinjaNode])] = []
        var test = try parseTuple(withCondexpr: false)
        while true {
            try expectBlockEnd()
            let (body, end) = try parseNodes(until: ["elif", "else", "endif"])
            branches.append((test, body))
            switch end!.name {
            case "elif":
                test = try parseTuple(withCondexpr: false)
            case "else":
                try expectBlockEnd()
                let (otherwise, _) = try parseNodes(until: ["endif"])
                try expectBlockEnd()
                return .conditional(branches: branches, otherwise: otherwise)
            default:
                try expectBlockEnd()
                return .conditional(branches: branches, otherwise: [])
            }
        }
    }

    private mutating func parseFor(at position: SourcePosition) throws -> JinjaNode {
        let targets = try parseTargets()
        guard skipName("in") else { throw error("expected \"in\" in the for loop, found \(describe(current))") }
        let iterable = try parseTuple(withCondexpr: false)
        var filter: JinjaExpr?
        if skipName("if") { filter = try parseExpression() }
        if isName("recursive") { throw error("recursive for loops are not supported") }
        try expectBlockEnd()
        let (body, end) = try parseNodes(until: ["endfor", "else"])
        var otherwise: [JinjaNode] = []
        if end!.name == "else" {
            try expectBlockEnd()
            (otherwise, _) = try parseNodes(until: ["endfor"])
        }
        try expectBlockEnd()
        return .loop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, position: position)
    }

    /// `a` or `a, b` or `(a, b)`.
    private mutating func parseTargets() throws -> [String] {
        let parenthesized = skipOp("(")
        var names = [try expectName()]
        while skipOp(",") {
            if case .name = current.kind { names.append(try expectName()) } else { break }
        }
        if parenthesized { try expectOp(")") }
        return names
    }

    private mutating func parseSet(at position: SourcePosition) throws -> JinjaNode {
        let first = try expectName()
        if skipOp(".") {
            let attribute = try expectName()
            try expectOp("=")
            let value = try parseTuple()
            try expectBlockEnd()
            return .assignAttribute(object: first, attribute: attribute, value: value, position: position)
        }
        var targets = [first]
        while skipOp(",") { targets.append(try expectName()) }
        if skipOp("=") {
            let value = try parseTuple()
            try expectBlockEnd()
            return .assign(targets: targets, value: value, position: position)
        }
        guard targets.count == 1 else { throw error("expected \"=\" after the targets of set") }
        if current.kind == .op("|") { throw error("filters on a {% set %} block are not supported") }
        try expectBlockEnd()
        let (body, _) = try parseNodes(until: ["endset"])
        try expectBlockEnd()
        return .assignBlock(name: first, body: body)
    }

    // MARK: Expressions

    /// `a, b` makes a tuple (a list here); one expression stays itself.
    private mutating func parseTuple(withCondexpr: Bool = true) throws -> JinjaExpr {
        let position = current.position
        let first = withCondexpr ? try parseExpression() : try parseOr()
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if current.kind == .blockEnd || current.kind == .variableEnd || isOp(")") || isName("in") { break }
            items.append(withCondexpr ? try parseExpression() : try parseOr())
        }
        return JinjaExpr(kind: .list(items), position: position)
    }

    private mutating func parseExpression() throws -> JinjaExpr {
        var expr = try parseOr()
        while isName("if") {
            let position = current.position
            k += 1
            let test = try parseOr()
            var otherwise: JinjaExpr?
            if skipName("else") { otherwise = try parseExpression() }
            expr = JinjaExpr(kind: .conditional(then: expr, test: test, otherwise: otherwise), position: position)
        }
        return expr
    }

    private mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        while isName("or") {
            let position = current.position
            k += 1
            left = JinjaExpr(kind: .or(left, try parseAnd()), position: position)
        }
        return left
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        while isName("and") {
            let position = current.position
            k += 1
            left = JinjaExpr(kind: .and(left, try parseNot()), position: position)
        }
        return left
    }

    private mutating func parseNot() throws -> JinjaExpr {
        if isName("not") {
            let position = current.position
            k += 1
            return JinjaExpr(kind: .not(try parseNot()), position: position)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JinjaExpr {
        let position = current.position
        let left = try parseMath1()
        var ops: [(op: String, operand: JinjaExpr)] = []
        while true {
            if case .op(let op) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(op) {
                k += 1
                ops.append((op, try parseMath1()))
            } else if skipName("in") {
                ops.append(("in", try parseMath1()))
            } else if isName("not"), tokens[k + 1].kind == .name("in") {
                k += 2
                ops.append(("not in", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? left : JinjaExpr(kind: .compare(left, ops), position: position)
    }

    private mutating func parseBinary(_ ops: [String], _ next: (inout JinjaParser) throws -> JinjaExpr) throws -> JinjaExpr {
        var left = try next(&self)
        while case .op(let op) = current.kind, ops.contains(op) {
            let position = current.position
            k += 1
            left = JinjaExpr(kind: .binary(op, left, try next(&self)), position: position)
        }
        return left
    }

    private mutating func parseMath1() throws -> JinjaExpr { try parseBinary(["+", "-"]) { try $0.parseConcat() } }
    private mutating func parseConcat() throws -> JinjaExpr { try parseBinary(["~"]) { try $0.parseMath2() } }
    private mutating func parseMath2() throws -> JinjaExpr { try parseBinary(["*", "/", "//", "%"]) { try $0.parsePow() } }
    private mutating func parsePow() throws -> JinjaExpr { try parseBinary(["**"]) { try $0.parseUnary(withFilter: true) } }

    private mutating func parseUnary(withFilter: Bool) throws -> JinjaExpr {
        let position = current.position
        var expr: JinjaExpr
        if skipOp("-") {
            expr = JinjaExpr(kind: .negate(try parseUnary(withFilter: false)), position: position)
        } else if skipOp("+") {
            expr = try parseUnary(withFilter: false)
        } else {
            expr = try parsePrimary()
        }
        expr = try parsePostfix(expr)
        return withFilter ? try parseFilters(expr) : expr
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        let token = advance()
        let position = token.position
        switch token.kind {
        case .name(let name):
            switch name {
            case "true", "True": return JinjaExpr(kind: .literal(.bool(true)), position: position)
            case "false", "False": return JinjaExpr(kind: .literal(.bool(false)), position: position)
            case "none", "None": return JinjaExpr(kind: .literal(.none), position: position)
            default: return JinjaExpr(kind: .name(name), position: position)
            }
        case .string(var text):
            while case .string(let more) = current.kind { // adjacent literals concatenate
                text += more
                k += 1
            }
            return JinjaExpr(kind: .literal(.string(text)), position: position)
        case .integer(let v):
            return JinjaExpr(kind: .literal(.int(v)), position: position)
        case .float(let v):
            return JinjaExpr(kind: .literal(.double(v)), position: position)
        case .op("("):
            if skipOp(")") { return JinjaExpr(kind: .list([]), position: position) }
            let expr = try parseTuple()
            try expectOp(")")
            return expr
        case .op("["):
            var items: [JinjaExpr] = []
            while !isOp("]") {
                items.append(try parseExpression())
                if !skipOp(",") { break }
            }
            try expectOp("]")
            return JinjaExpr(kind: .list(items), position: position)
        case .op("{"):
            var pairs: [(key: JinjaExpr, value: JinjaExpr)] = []
            while !isOp("}") {
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
                if !skipOp(",") { break }
            }
            try expectOp("}")
            return JinjaExpr(kind: .dict(pairs), position: position)
        default:
            throw error("unexpected \(describe(token)) in an expression", at: position)
        }
    }

    private mutating func parsePostfix(_ base: JinjaExpr) throws -> JinjaExpr {
        var expr = base
        while true {
            let position = current.position
            if skipOp(".") {
                switch advance().kind {
                case .name(let name): expr = JinjaExpr(kind: .attribute(expr, name), position: position)
                case .integer(let v):
                    expr = JinjaExpr(kind: .item(expr, JinjaExpr(kind: .literal(.int(v)), position: position)), position: position)
                default: throw error("expected an attribute name after \".\"", at: position)
                }
            } else if skipOp("[") {
                expr = try parseSubscript(expr, at: position)
            } else if isOp("(") {
                expr = try parseCall(expr)
            } else {
                return expr
            }
        }
    }

    private mutating func parseSubscript(_ base: JinjaExpr, at position: SourcePosition) throws -> JinjaExpr {
        var parts: [JinjaExpr?] = []
        var isSlice = false
        var currentPart: JinjaExpr?
        while !isOp("]") {
            if skipOp(":") {
                isSlice = true
                parts.append(currentPart)
                currentPart = nil
                continue
            }
            guard currentPart == nil else { throw error("expected \":\" or \"]\" in a subscript") }
            currentPart = try parseExpression()
        }
        try expectOp("]")
        parts.append(currentPart)
        if !isSlice {
            guard let index = parts[0] else { throw error("empty subscript", at: position) }
            return JinjaExpr(kind: .item(base, index), position: position)
        }
        guard parts.count <= 3 else { throw error("a slice takes at most start:stop:step", at: position) }
        while parts.count < 3 { parts.append(nil) }
        return JinjaExpr(kind: .slice(base, start: parts[0], stop: parts[1], step: parts[2]), position: position)
    }

    private mutating func parseArguments() throws -> ([JinjaExpr], [(name: String, value: JinjaExpr)]) {
        try expectOp("(")
        var args: [JinjaExpr] = []
        var kwargs: [(name: String, value: JinjaExpr)] = []
        while !isOp(")") {
            if case .name(let name) = current.kind, tokens[k + 1].kind == .op("=") {
                k += 2
                kwargs.append((name, try parseExpression()))
            } else {
                if !kwargs.isEmpty { throw error("positional argument after keyword argument") }
                if isOp("*") || isOp("**") { throw error("*args and **kwargs in calls are not supported") }
                args.append(try parseExpression())
            }
            if !skipOp(",") { break }
        }
        try expectOp(")")
        return (args, kwargs)
    }

    private mutating func parseCall(_ callee: JinjaExpr) throws -> JinjaExpr {
        let position = current.position
        let (args, kwargs) = try parseArguments()
        return JinjaExpr(kind: .call(callee, args: args, kwargs: kwargs), position: position)
    }

    private mutating func parseFilters(_ base: JinjaExpr) throws -> JinjaExpr {
        var expr = base
        while true {
            let position = current.position
            if skipOp("|") {
                let name = try expectName()
                guard Self.filters.contains(name) else { throw error("unsupported filter \"\(name)\"", at: position) }
                var args: [JinjaExpr] = [], kwargs: [(name: String, value: JinjaExpr)] = []
                if isOp("(") { (args, kwargs) = try parseArguments() }
                expr = JinjaExpr(kind: .filter(expr, name: name, args: args, kwargs: kwargs), position: position)
            } else if isName("is") {
                k += 1
                let negated = skipName("not")
                let name: String
                switch advance().kind {
                case .name(let n): name = n
                case .op(let o): name = o
                default: throw error("expected a test name after \"is\"", at: position)
                }
                guard Self.tests.contains(name) else { throw error("unsupported test \"\(name)\"", at: position) }
                var args: [JinjaExpr] = []
                if isOp("(") {
                    (args, _) = try parseArguments()
                } else if startsPrimary, !isName("else"), !isName("or"), !isName("and") {
                    args = [try parsePostfix(try parsePrimary())]
                }
                expr = JinjaExpr(kind: .test(expr, name: name, args: args, negated: negated), position: position)
            } else if isOp("(") {
                expr = try parseCall(expr)
            } else {
                return expr
            }
        }
    }

    private var startsPrimary: Bool {
        switch current.kind {
        case .name, .string, .integer, .float: return true
        case .op(let o): return o == "[" || o == "{"
        default: return false
        }
    }
}
