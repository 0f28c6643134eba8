import Generation
import Search

/// The search's `Judge` on the in-process engine.
/// - `logprob` mode: one teacher-forced pass scores each choice string after the verdict prefix.
/// - `generate` mode: the verdict is sampled with the request's seed and returned as text.
public struct EngineJudge: Judge {
    public let executor: EngineExecutor
    public let prompt: ChatPrompt
    public let stopTokenIds: Set<Int>
    public let images: ImageStore

    public init(executor: EngineExecutor, prompt: ChatPrompt, stopTokenIds: Set<Int>, images: ImageStore = ImageStore()) {
        self.executor = executor
        self.prompt = prompt
        self.stopTokenIds = stopTokenIds
        self.images = images
    }

    public func judge(_ request: JudgeRequest) async throws -> JudgeReply {
        do {
            return try await verdict(request)
        } catch let error as GenerationError where error.code == .promptTooLong {
            return .promptTooLong(message: error.message)
        }
    }

    func verdict(_ request: JudgeRequest) async throws -> JudgeReply {
        switch request.mode {
        case .logprob:
            guard request.choices.count == 2 else {
                throw LocalEngineError("a logprob verdict needs exactly two choices, got \(request.choices.count)")
            }
            let images = try images.images(for: request.imageRef)
            let (shared, continuations) = try choiceTokens(request, imageCount: images.count)
            let scores = try await executor.run {
                try $0.scoreContinuations(prompt: shared, images: images, continuations: continuations)
            }
            return .choiceLogprobs(first: scores[0], second: scores[1])
        case .generate:
            let images = try images.images(for: request.imageRef)
            let tokens = executor.generator.expandImageTokens(
                try prompt.tokens(user: request.prompt, imageCount: images.count, assistantPrefix: request.verdictPrefix))
            // A verdict cut at the context's end has no choice in it: the referee counts it as unparsable.
            let generation = GenerationRequest(
                promptTokens: tokens, images: images, seeds: [request.seed], sampling: SamplingParameters(request.sampling),
                maxNewTokens: executor.generator.newTokenBudget(request.maxNewTokens, promptTokens: tokens.count),
                stopTokenIds: stopTokenIds)
            let output = try await executor.run { try $0.generate(generation) }
            return .verdict(text: output.samples[0].text)
        }
    }

    /// The judge prompt's tokens as the model reads them: chat template, image tokens and verdict
    /// prefix (a logprob request scores its choices after them).
    public func promptTokenCount(_ request: JudgeRequest) throws -> Int {
        let imageCount = try images.images(for: request.imageRef).count
        return executor.generator.expandImageTokens(
            try prompt.tokens(user: request.prompt, imageCount: imageCount, assistantPrefix: request.verdictPrefix)
        ).count
    }

    /// Tokenizes prompt + prefix + each choice as whole texts (BPE may merge across the seam) and
    /// splits them into the shared leading tokens and each choice's own tokens.
    func choiceTokens(_ request: JudgeRequest, imageCount: Int) throws -> (shared: [Int], continuations: [[Int]]) {
        let full = try request.choices.map {
            executor.generator.expandImageTokens(
                try prompt.tokens(user: request.prompt, imageCount: imageCount, assistantPrefix: request.verdictPrefix + $0))
        }
        var shared = zip(full[0], full[1]).prefix { $0 == $1 }.count
        // Each choice must keep at least one token of its own to be scored.
        shared = min(shared, full[0].count - 1, full[1].count - 1)
        guard shared > 0 else { throw LocalEngineError("the judge prompt tokenized to nothing") }
        return (Array(full[0][..<shared]), full.map { Array($0[shared...]) })
    }
}
