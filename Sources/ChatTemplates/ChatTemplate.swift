import Foundation

/// One message of a conversation.
public struct ChatMessage: Sendable, Codable, Equatable {
    public var role: String
    public var content: String
    /// Images attached to the message. Templates then see `content` as transformers' processors give it:
    /// `[{"type": "image"}, …, {"type": "text", "text": content}]`, so vision templates place their image
    /// tokens (Llama-3.2-Vision's `<|image|>`, Qwen2-VL's vision pads).
    public var imageCount: Int

    public init(role: String, content: String, imageCount: Int = 0) {
        self.role = role
        self.content = content
        self.imageCount = imageCount
    }

    private enum CodingKeys: String, CodingKey { case role, content, imageCount }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(String.self, forKey: .role)
        content = try c.decode(String.self, forKey: .content)
        imageCount = try c.decodeIfPresent(Int.self, forKey: .imageCount) ?? 0
    }
}

/// A Hugging Face chat template (Jinja), rendered as transformers' `apply_chat_template(…, tokenize=False)`
/// renders it with jinja2.
///
/// Supported subset: `{% if/elif/else %}`, `{% for %}` (with `else`, an `if` filter, tuple targets,
/// `loop.index/index0/revindex/revindex0/first/last/length/previtem/nextitem`), `{% set %}` (names,
/// tuples, `namespace` attributes, blocks), `{% break %}`, `{% continue %}`, `{% generation %}`,
/// comments, whitespace control (`-` and `+`, with jinja2's trim_blocks/lstrip_blocks as transformers
/// sets them); literals, arithmetic, `~`, comparisons, `and/or/not`, `in`, conditional expressions,
/// indexing, slicing, attributes; the filters and tests in `JinjaParser.filters`/`tests`; string methods
/// (`strip`, `split`, `startswith`, …), dict methods (`items`, `keys`, `values`, `get`); the globals
/// `raise_exception`, `strftime_now`, `namespace`, `range`, `dict`. Macros, `include`, `extends`,
/// `call`, `filter`, `with`, `raw` blocks and `%`-formatting are errors naming the construct.
public struct ChatTemplate: Sendable {
    public let source: String
    private let nodes: [JinjaNode]

    /// Parses `source`; a syntax error or an unsupported construct names its line and column.
    public init(source: String) throws {
        self.source = source
        nodes = try JinjaParser.parse(source)
    }

    /// Parses a template file, as `--chat-template FILE` passes one.
    public init(contentsOf url: URL) throws {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ChatTemplateError(.unreadableFile, "cannot read chat template \(url.path): \(error.localizedDescription)")
        }
        try self.init(source: text)
    }

    /// The prompt text. The template sees what transformers passes: `messages`, `add_generation_prompt`,
    /// `bos_token`/`eos_token` (undefined when nil), `tools` and `documents` (none). `date` is what
    /// `strftime_now` reads (Llama 3.2's "Today Date"). A `raise_exception` in the template throws
    /// `.exception` with its message.
    public func render(
        messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String?, eosToken: String?,
        date: Date = Date()
    ) throws -> String {
        var context: [String: JinjaValue] = [
            "messages": .list(messages.map(Self.value(of:))),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "tools": .none,
            "documents": .none
        ]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        return try JinjaInterpreter(context: context, now: date).render(nodes)
    }

    private static func value(of message: ChatMessage) -> JinjaValue {
        var content = JinjaValue.string(message.content)
        if message.imageCount > 0 {
            let image = JinjaValue.dict(JinjaDict([("type", .string("image"))]))
            let text = JinjaValue.dict(JinjaDict([("type", .string("text")), ("text", .string(message.content))]))
            content = .list(Array(repeating: image, count: message.imageCount) + [text])
        }
        return .dict(JinjaDict([("role", .string(message.role)), ("content", content)]))
    }
}
