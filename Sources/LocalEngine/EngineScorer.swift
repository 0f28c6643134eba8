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
        let prepared = try prepare(request)
        let fitting = prepared.fitting
        guard !fitting.isEmpty else { return (prepared.scores([]), 0, 0) }
        let images = prepared.images
        let scored = try await executor.run { try $0.scoreContinuations(fitting, images: images) }
        return (prepared.scores(scored.logprobs), scored.cachedPromptTokens, scored.computedTokens)
    }

    /// The engine's input for `request`: one teacher-forced prompt per answer, and which of them fit
    /// the context. Scoring several requests' prompts in one `scoreContinuations` call gives each the
    /// score it gets alone (batch-invariant kernels), when they share their images.
    public func prepare(_ request: ScoreRequest) throws -> PreparedScores {
        guard request.choices.count == 2 else {
            throw LocalEngineError("a self-reward score needs exactly two choices (yes, no), got \(request.choices.count)")
        }
        let images = try images.images(for: request.imageRef)
        let items = try request.answers.map { try item(request, answer: $0, imageCount: images.count) }
        let context = executor.generator.contextLength
        let fits = items.map { item in item.prompt.count + (item.continuations.map(\.count).max() ?? 0) <= context }
        return PreparedScores(items: items, fits: fits, images: images)
    }

    /// The answer's teacher-forced prompt (`ChatPrompt.selfRewardTokens`, image tokens expanded).
    func item(_ request: ScoreRequest, answer: String, imageCount: Int) throws -> ScoredPrompt {
        let (shared, continuations) = try prompt.selfRewardTokens(
            user: request.question, imageCount: imageCount, answer: answer, verification: request.verification,
            verdictPrefix: request.verdictPrefix, choices: request.choices, expand: executor.generator.expandImageTokens)
        return ScoredPrompt(prompt: shared, continuations: continuations)
    }
}

/// A self-reward request ready for the engine (`EngineScorer.prepare`).
public struct PreparedScores: Sendable {
    /// One per answer: the conversation up to the verdict, and the two choices after it.
    public let items: [ScoredPrompt]
    /// Whether each answer's prompt fits the context (one that does not scores −∞ and is not run).
    public let fits: [Bool]
    /// The request's images (none or one).
    public let images: [PromptImage]

    /// The prompts the engine runs.
    public var fitting: [ScoredPrompt] { zip(items, fits).filter(\.1).map(\.0) }

    /// Each answer's score from the fitting prompts' log-probabilities (yes, no), in order.
    public func scores(_ logprobs: [[Double]]) -> [Double] {
        var next = logprobs.makeIterator()
        return fits.map { fit -> Double in
            guard fit, let pair = next.next() else { return -.infinity }
            return pair[0] - pair[1]
        }
    }
}
