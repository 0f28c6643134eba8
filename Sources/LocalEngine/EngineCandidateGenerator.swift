import Generation
import Search

/// The search's `CandidateGenerator` on the in-process engine: the n candidates of a request are
/// one batched decode over one shared (and cached) prefix.
public struct EngineCandidateGenerator: CandidateGenerator {
    public let executor: EngineExecutor
    public let prompt: ChatPrompt
    /// Ids that end a candidate (the model's EOS ids).
    public let stopTokenIds: Set<Int>
    public let images: ImageStore
    /// Keep each candidate's keys and values in the prefix cache, so that scoring it right after
    /// (self-reward) computes only the verification turn.
    public let keepCandidates: Bool

    public init(
        executor: EngineExecutor, prompt: ChatPrompt, stopTokenIds: Set<Int>, images: ImageStore = ImageStore(),
        keepCandidates: Bool = false
    ) {
        self.executor = executor
        self.prompt = prompt
        self.stopTokenIds = stopTokenIds
        self.images = images
        self.keepCandidates = keepCandidates
    }

    public func generate(_ request: GenerateRequest) async throws -> [GeneratedCandidate] {
        try await generateMeasured(request).candidates
    }

    public func generateMeasured(_ request: GenerateRequest) async throws -> MeasuredCandidates {
        let generation = try engineRequest(request, images: try images.images(for: request.imageRef))
        let output = try await executor.run { try $0.generate(generation) }
        return MeasuredCandidates(
            candidates: output.samples.map {
                GeneratedCandidate(
                    text: $0.text, tokenCount: $0.tokenIds.count, cumulativeLogprob: $0.cumulativeLogprob,
                    finishReason: Search.FinishReason($0.finishReason))
            },
            cost: ComputeCost(output.timings, promptTokens: generation.promptTokens.count))
    }
}

extension EngineCandidateGenerator {
    /// The engine's request for a search request: the chat prompt rendered with the images in
    /// their places and their tokens expanded. A worker calls this too, so a cluster asks the
    /// engine exactly what `stagebeam run` asks.
    public func engineRequest(_ request: GenerateRequest, images: [PromptImage]) throws -> GenerationRequest {
        let tokens = executor.generator.expandImageTokens(
            try prompt.tokens(user: request.question, imageCount: images.count, assistantPrefix: request.assistantPrefix))
        return GenerationRequest(
            promptTokens: tokens, images: images, seeds: request.seeds, sampling: SamplingParameters(request.sampling),
            maxNewTokens: executor.generator.newTokenBudget(request.maxNewTokens, promptTokens: tokens.count),
            stopStrings: request.stop, stopTokenIds: stopTokenIds, keepSamples: keepCandidates)
    }
}

extension ComputeCost {
    /// What an engine call cost, from its timings.
    public init(_ timings: GenerationTimings, promptTokens: Int) {
        self.init(
            prefillSeconds: timings.prefillSeconds, decodeSeconds: timings.decodeSeconds, promptTokens: promptTokens,
            reusedPromptTokens: timings.cachedPromptTokens, generatedTokens: timings.decodeTokens)
    }
}

extension SamplingParameters {
    public init(_ sampling: Sampling) {
        self.init(temperature: Float(sampling.temperature), topK: sampling.topK, topP: Float(sampling.topP))
    }
}

extension Search.FinishReason {
    public init(_ reason: Generation.FinishReason) {
        switch reason {
        case .stop: self = .stop
        case .eos: self = .eos
        case .length: self = .length
        }
    }
}
