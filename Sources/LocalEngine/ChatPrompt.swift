import ChatTemplates
import Tokenization

/// Turns (question, assistant text so far) into prompt tokens: the model's chat template with the
/// question as the user turn and the generation prompt, then the assistant prefix continued verbatim.
public struct ChatPrompt: Sendable {
    public let template: ChatTemplate
    public let tokenizer: Tokenizer
    public let systemMessage: String?

    public init(tokenizer: Tokenizer, template: ChatTemplate? = nil, systemMessage: String? = nil) throws {
        guard let template = template ?? tokenizer.chatTemplate else {
            throw LocalEngineError("the model has no chat_template in tokenizer_config.json; pass a chat template file")
        }
        self.template = template
        self.tokenizer = tokenizer
        self.systemMessage = systemMessage
    }

    /// The rendered text (special tokens written out as text by the template, which also places
    /// the user turn's images).
    public func text(user: String, imageCount: Int = 0, assistantPrefix: String) throws -> String {
        var messages: [ChatMessage] = []
        if let systemMessage { messages.append(ChatMessage(role: "system", content: systemMessage)) }
        messages.append(ChatMessage(role: "user", content: user, imageCount: imageCount))
        let head = try template.render(
            messages: messages, addGenerationPrompt: true,
            bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken)
        return head + assistantPrefix
    }

    /// A longer conversation: the question as the first user turn (with the images), then `turns`
    /// (an assistant answer, a user's follow-up, …) and the generation prompt, then `assistantPrefix`.
    /// With the usual templates, the text up to the end of the first assistant turn is what `text`
    /// gives for that answer as `assistantPrefix`, so its cached keys and values serve this one.
    public func text(user: String, imageCount: Int = 0, turns: [ChatMessage], assistantPrefix: String) throws -> String {
        var messages: [ChatMessage] = []
        if let systemMessage { messages.append(ChatMessage(role: "system", content: systemMessage)) }
        messages.append(ChatMessage(role: "user", content: user, imageCount: imageCount))
        messages += turns
        let head = try template.render(
            messages: messages, addGenerationPrompt: true,
            bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken)
        return head + assistantPrefix
    }

    /// Tokens of `text(...)`: the template writes BOS itself, so no special tokens are added.
    /// Image tokens are not yet expanded (`TextGenerator.expandImageTokens`).
    public func tokens(user: String, imageCount: Int = 0, assistantPrefix: String) throws -> [Int] {
        tokenizer.encode(try text(user: user, imageCount: imageCount, assistantPrefix: assistantPrefix), addSpecialTokens: false)
    }
}

extension ChatPrompt {
    /// A logprob verdict's prompts: tokenizes prompt + verdict prefix + each choice as whole texts
    /// (BPE may merge across the seam) and splits them into the shared leading tokens and each
    /// choice's own tokens, which are scored after the shared ones. `expand` expands image tokens.
    public func choiceTokens(
        user: String, imageCount: Int, verdictPrefix: String, choices: [String], expand: ([Int]) -> [Int]
    ) throws -> (shared: [Int], continuations: [[Int]]) {
        let full = try choices.map { expand(try tokens(user: user, imageCount: imageCount, assistantPrefix: verdictPrefix + $0)) }
        var shared = zip(full[0], full[1]).prefix { $0 == $1 }.count
        // Each choice must keep at least one token of its own to be scored.
        shared = min(shared, full[0].count - 1, full[1].count - 1)
        guard shared > 0 else { throw LocalEngineError("the judge prompt tokenized to nothing") }
        return (Array(full[0][..<shared]), full.map { Array($0[shared...]) })
    }

    /// A self-reward score's prompts: the question, the candidate `answer` as the assistant's turn,
    /// the `verification` user turn, then the verdict prefix and each choice, tokenized as whole
    /// texts and split into the shared leading tokens and each choice's own tokens (as
    /// `choiceTokens`). The in-process engine and a server backend score the same tokens.
    public func selfRewardTokens(
        user: String, imageCount: Int, answer: String, verification: String, verdictPrefix: String, choices: [String],
        expand: ([Int]) -> [Int]
    ) throws -> (shared: [Int], continuations: [[Int]]) {
        let full = try choices.map { choice in
            expand(
                tokenizer.encode(
                    try text(
                        user: user, imageCount: imageCount,
                        turns: [ChatMessage(role: "assistant", content: answer), ChatMessage(role: "user", content: verification)],
                        assistantPrefix: verdictPrefix + choice),
                    addSpecialTokens: false))
        }
        var shared = zip(full[0], full[1]).prefix { $0 == $1 }.count
        shared = min(shared, full[0].count - 1, full[1].count - 1)
        guard shared > 0 else { throw LocalEngineError("the self-reward prompt tokenized to nothing") }
        return (Array(full[0][..<shared]), full.map { Array($0[shared...]) })
    }
}

public struct LocalEngineError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
