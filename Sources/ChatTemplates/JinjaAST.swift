/// The parsed form of a chat template (the supported Jinja subset).
indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr)
    case conditional(branches: [(test: JinjaExpr, body: [JinjaNode])], otherwise: [JinjaNode])
    case loop(
        targets: [String], iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], position: SourcePosition)
    case assign(targets: [String], value: JinjaExpr, position: SourcePosition)
    /// `{% set ns.attr = value %}` on a namespace.
    case assignAttribute(object: String, attribute: String, value: JinjaExpr, position: SourcePosition)
    /// `{% set name %}…{% endset %}`.
    case assignBlock(name: String, body: [JinjaNode])
    case breakLoop
    case continueLoop
}

struct JinjaExpr: Sendable {
    indirect enum Kind: Sendable {
        case literal(JinjaValue)
        case name(String)
        case list([JinjaExpr])
        case dict([(key: JinjaExpr, value: JinjaExpr)])
        case attribute(JinjaExpr, String)
        case item(JinjaExpr, JinjaExpr)
        case slice(JinjaExpr, start: JinjaExpr?, stop: JinjaExpr?, step: JinjaExpr?)
        case call(JinjaExpr, args: [JinjaExpr], kwargs: [(name: String, value: JinjaExpr)])
        case filter(JinjaExpr, name: String, args: [JinjaExpr], kwargs: [(name: String, value: JinjaExpr)])
        case test(JinjaExpr, name: String, args: [JinjaExpr], negated: Bool)
        case not(JinjaExpr)
        case negate(JinjaExpr)
        case binary(String, JinjaExpr, JinjaExpr)
        case and(JinjaExpr, JinjaExpr)
        case or(JinjaExpr, JinjaExpr)
        /// `a < b < c`: each operator with its right operand.
        case compare(JinjaExpr, [(op: String, operand: JinjaExpr)])
        case conditional(then: JinjaExpr, test: JinjaExpr, otherwise: JinjaExpr?)
    }

    let kind: Kind
    let position: SourcePosition
}
