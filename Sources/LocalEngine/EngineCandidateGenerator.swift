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

    public init(executor: EngineExecutor, prompt: ChatPrompt, stopTokenIds: Set<Int>, images: ImageStore = ImageStore()) {
        self.executor = executor
        self.prompt = prompt
        self.stopTokenIds = stopTokenIds
        self.images = images
    }

    public func generate(_ request: GenerateRequest) async throws -> [GeneratedCandidate] {
        let images = try images.images(for: request.imageRef)
        let tokens = executor.generator.expandImageTokens(
            try prompt.tokens(user: request.question, imageCount: images.count, assistantPrefix: request.assistantPrefix))
        let generation = GenerationRequest(
            promptTokens: tokens, images: images, seeds: request.seeds, sampling: SamplingParameters(request.sampling),
            maxNewTokens: request.maxNewTokens, stopStrings: request.stop, stopTokenIds: stopTokenIds)
        let output = try await executor.run { try $0.generate(generation) }
        return output.samples.map {
            GeneratedCandidate(text: $0.text, tokenCount: $0.tokenIds.count, cumulativeLogprob: $0.cumulativeLogprob,
                               finishReason: Search.FinishReason($0.finishReason))
        }
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
