/// What a generator is asked for: `seeds.count` continuations of one assistant prefix.
/// Everything a remote worker needs and nothing engine-specific: the worker applies its chat template
/// to (question, image, assistant prefix), tokenizes, and samples one continuation per seed.
public struct GenerateRequest: Codable, Sendable, Hashable {
    public var question: String
    /// Content hash of the image; its bytes travel separately. nil for a text-only question.
    public var imageRef: String?
    /// The assistant's text so far, continued verbatim (it ends with the forced opening tag when tags are forced).
    public var assistantPrefix: String
    /// One sampler seed per candidate; candidate i must be sampled with seeds[i] alone, so its tokens do
    /// not depend on which worker runs it or what else shares its batch.
    public var seeds: [UInt64]
    /// Generation of a candidate stops right after its text first contains one of these strings.
    public var stop: [String]
    public var maxNewTokens: Int
    public var sampling: Sampling

    public var count: Int { seeds.count }

    public init(
        question: String, imageRef: String?, assistantPrefix: String, seeds: [UInt64],
        stop: [String], maxNewTokens: Int, sampling: Sampling
    ) {
        self.question = question
        self.imageRef = imageRef
        self.assistantPrefix = assistantPrefix
        self.seeds = seeds
        self.stop = stop
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
    }
}

/// Why a candidate's generation ended.
public enum FinishReason: String, Codable, Sendable, Hashable {
    /// Its text contains one of the request's stop strings.
    case stop
    /// It reached `maxNewTokens`.
    case length
    /// The model emitted an end-of-sequence token.
    case eos
}

/// One continuation, as a generator returns it.
public struct GeneratedCandidate: Codable, Sendable, Hashable {
    /// The new text only (not the prefix), including the stop string that ended it, if any.
    public var text: String
    public var tokenCount: Int
    /// Sum of the sampled tokens' log-probabilities under the model.
    public var cumulativeLogprob: Double
    public var finishReason: FinishReason
    /// Which worker produced it (set by the cluster; nil in process).
    public var worker: String?

    public init(text: String, tokenCount: Int, cumulativeLogprob: Double, finishReason: FinishReason, worker: String? = nil) {
        self.text = text
        self.tokenCount = tokenCount
        self.cumulativeLogprob = cumulativeLogprob
        self.finishReason = finishReason
        self.worker = worker
    }
}

/// Samples candidates. Implemented by an in-process engine or by the cluster's dispatcher.
/// Must return exactly `request.count` candidates, in the order of `request.seeds`.
public protocol CandidateGenerator: Sendable {
    func generate(_ request: GenerateRequest) async throws -> [GeneratedCandidate]
    /// `generate`, with what it cost where it ran; the search calls this one. A generator that does
    /// not measure keeps the default, which reports no cost.
    func generateMeasured(_ request: GenerateRequest) async throws -> MeasuredCandidates
}

extension CandidateGenerator {
    public func generateMeasured(_ request: GenerateRequest) async throws -> MeasuredCandidates {
        MeasuredCandidates(candidates: try await generate(request), cost: nil)
    }
}
