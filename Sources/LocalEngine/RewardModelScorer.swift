import ChatTemplates
import Dispatch
import Generation
import Search

/// The search's `Scorer` on a sequence-classification reward model: each candidate answer becomes
/// a conversation (the question as the user turn, the answer so far as the assistant turn) in the
/// reward model's chat template, and the model's one label is its score. The reward model reads
/// text only: the image, if any, is not shown to it. The request's self-reward wording is unused.
public final class RewardModelScorer: Scorer, @unchecked Sendable {
    // @unchecked: `model` is not thread-safe; every use goes through `queue`, one at a time.
    public let model: RewardModel
    let template: ChatTemplate
    private let queue = DispatchQueue(label: "stagebeam.reward-model")

    public init(model: RewardModel, template: ChatTemplate? = nil) throws {
        guard let template = template ?? model.tokenizer.chatTemplate else {
            throw LocalEngineError("the reward model at \(model.url.path) has no chat_template in tokenizer_config.json")
        }
        self.model = model
        self.template = template
    }

    /// The tokens the reward model reads for `answer`: the conversation without a generation prompt,
    /// as `tokenizer.apply_chat_template(conversation)` gives it.
    public func tokens(question: String, answer: String) throws -> [Int] {
        let text = try template.render(
            messages: [ChatMessage(role: "user", content: question), ChatMessage(role: "assistant", content: answer)],
            addGenerationPrompt: false, bosToken: model.tokenizer.bosToken, eosToken: model.tokenizer.eosToken)
        return model.tokenizer.encode(text, addSpecialTokens: false)
    }

    public func score(_ request: ScoreRequest) async throws -> [Double] {
        let model = self.model
        let inputs = try request.answers.map { try tokens(question: request.question, answer: $0) }
        let fits = inputs.map { $0.count <= model.contextLength }
        let fitting = zip(inputs, fits).filter(\.1).map(\.0)
        guard !fitting.isEmpty else { return inputs.map { _ in -.infinity } }
        let rewards = try await run { try $0.rewards(fitting) }
        var next = rewards.makeIterator()
        return fits.map { fit in fit ? Double(next.next()!) : -.infinity }
    }

    /// Runs `work` on the reward model, one caller at a time, off Swift's cooperative pool.
    public func run<T: Sendable>(_ work: @escaping @Sendable (RewardModel) throws -> T) async throws -> T {
        let model = self.model
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work(model) }) }
        }
    }
}
