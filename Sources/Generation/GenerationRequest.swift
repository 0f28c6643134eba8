import Foundation

/// An image of a prompt: its encoded bytes (JPEG or PNG) and their content hash, which keys the
/// generator's image-feature cache and its prefix cache.
public struct PromptImage: Sendable {
    public var hash: String
    public var data: Data

    public init(hash: String, data: Data) {
        self.hash = hash
        self.data = data
    }
}

/// N samples continuing one prompt.
public struct GenerationRequest: Sendable {
    /// For a vision model, each image token already expanded to the image's feature rows
    /// (`TextGenerator.expandImageTokens`), as transformers' processor does.
    public var promptTokens: [Int]
    /// The images whose features fill the prompt's image tokens, in order.
    public var images: [PromptImage]
    /// One sampler seed per sample; the number of seeds is the number of samples.
    public var seeds: [UInt64]
    public var sampling: SamplingParameters
    public var maxNewTokens: Int
    /// A sample stops right after it has produced one of these strings (matched on the decoded bytes,
    /// across token boundaries); its text ends with the stop string, as transformers' `stop_strings`.
    public var stopStrings: [String]
    /// Ids that end a sample (EOS); the id is kept in `tokenIds` but adds no text.
    public var stopTokenIds: Set<Int>
    /// How many of the most likely tokens to report with each generated token (0: none).
    public var topLogprobs: Int
    /// Keep each finished sample's keys and values (the prompt and its tokens) in the prefix cache,
    /// so that a later prompt extending a sample (a score of it, the next stage after it) computes
    /// only what comes after. Off: samples are released when the request ends.
    public var keepSamples: Bool
    /// Stops the request early and reports its samples' text as they are decoded (nil: neither).
    public var control: GenerationControl?

    public init(
        promptTokens: [Int], images: [PromptImage] = [], seeds: [UInt64], sampling: SamplingParameters,
        maxNewTokens: Int, stopStrings: [String] = [], stopTokenIds: Set<Int> = [], topLogprobs: Int = 0,
        keepSamples: Bool = false, control: GenerationControl? = nil
    ) {
        self.control = control
        self.keepSamples = keepSamples
        self.promptTokens = promptTokens
        self.images = images
        self.seeds = seeds
        self.sampling = sampling
        self.maxNewTokens = maxNewTokens
        self.stopStrings = stopStrings
        self.stopTokenIds = stopTokenIds
        self.topLogprobs = topLogprobs
    }
}

public enum FinishReason: String, Sendable, Codable {
    /// Produced a stop string.
    case stop
    /// Produced a stop token id (EOS).
    case eos
    /// Reached `maxNewTokens`.
    case length
}

public struct TokenLogprob: Sendable, Codable, Equatable {
    public var id: Int
    /// Natural log of the token's probability under the model (temperature 1, no filters).
    public var logprob: Float
}

public struct GeneratedSample: Sendable {
    public var tokenIds: [Int]
    /// UTF-8 text of the output without special tokens, cut right after a matched stop string.
    public var text: String
    public var finishReason: FinishReason
    /// Σ log p(token) under the model at temperature 1.
    public var cumulativeLogprob: Double
    /// For each generated token, the `topLogprobs` most likely ids at that step.
    public var topLogprobs: [[TokenLogprob]]
}

public struct GenerationTimings: Sendable, Codable {
    /// Decoding, preprocessing and encoding images (0 when their features were cached).
    public var imageSeconds = 0.0
    /// Prompt tokens whose keys and values were reused from an earlier request.
    public var cachedPromptTokens = 0
    /// Prompt tokens computed by this request.
    public var prefillTokens = 0
    public var prefillSeconds = 0.0
    /// Tokens produced by all samples together.
    public var decodeTokens = 0
    /// Rows the decode passes computed: fewer than `decodeTokens` when samples wrote the same tokens
    /// and shared rows.
    public var decodeRows = 0
    public var decodeSeconds = 0.0
}

/// Teacher-forced log-probabilities of several prompts' continuations, scored together.
public struct ContinuationScores: Sendable {
    /// Per prompt, per continuation: the summed log-probability of its tokens after the prompt.
    public var logprobs: [[Double]]
    /// Prompt tokens whose keys and values were reused from the prefix cache, over all prompts.
    public var cachedPromptTokens: Int
    /// Tokens computed (prompt tails and continuation tokens), over all prompts.
    public var computedTokens: Int
    /// Per prompt: its tokens reused from the prefix cache (their sum is `cachedPromptTokens`).
    public var cachedTokensByPrompt: [Int] = []
}

/// A prompt and the continuations to score after it.
public struct ScoredPrompt: Sendable {
    public var prompt: [Int]
    public var continuations: [[Int]]

    public init(prompt: [Int], continuations: [[Int]]) {
        self.prompt = prompt
        self.continuations = continuations
    }
}

public struct GenerationOutput: Sendable {
    public var samples: [GeneratedSample]
    public var timings: GenerationTimings
}
