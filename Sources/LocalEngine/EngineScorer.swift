import ChatTemplates
import Generation
import Search

/// The search's `Scorer` on the in-process engine, by self-reward: after each candidate answer, a user
/// turn asks whether it is right (the request's `verification`), the assistant turn starts with the
/// `verdictPrefix`, and the score is log p(yes) − log p(no) of the two `choices` there, read from one
/// teacher-forced pass. A request's candidates are scored as one batch; each starts from its longest
/// cached prefix (the candidate itself, when the generator kept it: `keepCandidates`), so only the
/// verification turn is computed. A candidate too long for the context scores −∞.
public struct EngineScorer: Scorer {
    public let executor: EngineExecutor
    public let prompt: ChatPrompt
    public let images: ImageStore

    public init(executor: EngineExecutor, prompt: ChatPrompt, images: ImageStore = ImageStore()) {
        self.executor = executor
        self.prompt = prompt
        self.images = images
    }

    public func score(_ request: ScoreRequest) async throws -> [Double] {
        try await scoreWithCounts(request).scores
    }

    /// The scores, and how many prompt tokens came from the cache and how many were computed.
    public func scoreWithCounts(_ request: ScoreRequest) async throws -> (scores: [Double], cachedTokens: Int, computedTokens: Int) {
        guard request.choices.count == 2 else {
            throw LocalEngineError("a self-reward score needs exactly two choices (yes, no), got \(request.choices.count)")
        }
        let images = try images.images(for: request.imageRef)
        let items = try request.answers.map { try item(request, answer: $0, imageCount: images.count) }
        let context = executor.generator.contextLength
        let fits = items.map { item in item.prompt.count + (item.continuations.map(\.count).max() ?? 0) <= context }
        let fitting = zip(items, fits).filter(\.1).map(\.0)
        guard !fitting.isEmpty else { return (items.map { _ in -.infinity }, 0, 0) }
        let scored = try await executor.run { try $0.scoreContinuations(fitting, images: images) }
        var next = scored.logprobs.makeIterator()
        let scores = fits.map { fit -> Double in
            guard fit, let pair = next.next() else { return -.infinity }
            return pair[0] - pair[1]
        }
        return (scores, scored.cachedPromptTokens, scored.computedTokens)
    }

    /// Tokenizes the conversation with each choice as whole texts (BPE may merge across the seam) and
    /// splits them into the shared leading tokens and each choice's own tokens.
    func item(_ request: ScoreRequest, answer: String, imageCount: Int) throws -> ScoredPrompt {
        let full = try request.choices.map { choice in
            executor.generator.expandImageTokens(
                prompt.tokenizer.encode(
                    try prompt.text(
                        user: request.question, imageCount: imageCount,
                        turns: [ChatMessage(role: "assistant", content: answer), ChatMessage(role: "user", content: request.verification)],
                        assistantPrefix: request.verdictPrefix + choice),
                    addSpecialTokens: false))
        }
        var shared = zip(full[0], full[1]).prefix { $0 == $1 }.count
        shared = min(shared, full[0].count - 1, full[1].count - 1)
        guard shared > 0 else { throw LocalEngineError("the self-reward prompt tokenized to nothing") }
        return ScoredPrompt(prompt: Array(full[0][..<shared]), continuations: full.map { Array($0[shared...]) })
    }
}
