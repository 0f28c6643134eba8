/// The JSON bodies exchanged with inference servers, as the servers spell them (the client encodes
/// and decodes with snake_case keys). Only the fields stagebeam sends or reads are listed.

/// llama.cpp's `POST /completion` (tools/server in llama.cpp): the prompt as token ids.
struct LlamaCompletionRequest: Encodable {
    var prompt: [Int]
    var nPredict: Int
    /// llama.cpp's seeds are 32-bit; 0xFFFFFFFF means "random" and is never sent.
    var seed: UInt32
    var temperature: Float
    var topK: Int
    var topP: Float
    var minP: Float
    var repeatPenalty: Float
    /// The slot's context: the penalty looks back over everything, as the engine's does (llama.cpp
    /// refuses -1 here).
    var repeatLastN: Int
    var stop: [String]
    /// Log-probabilities of the top `nProbs` tokens at each step, before sampling (raw logits).
    var nProbs: Int
    var postSamplingProbs = false
    /// Every request is computed from its first token: a reused cache makes results depend on what ran before.
    var cachePrompt = false
    var returnTokens = true
    /// The engine's order (transformers'): penalty, top-k, temperature, top-p, min-p.
    /// llama.cpp's default applies top-p and min-p before temperature.
    var samplers = ["penalties", "top_k", "temperature", "top_p", "min_p"]
    // Samplers the engine does not have, set off explicitly (llama.cpp's defaults are not all off).
    var typicalP: Float = 1
    var presencePenalty: Float = 0
    var frequencyPenalty: Float = 0
    var dryMultiplier: Float = 0
    var xtcProbability: Float = 0
    var topNSigma: Float = -1
    var mirostat = 0
    var stream = false
}

struct LlamaCompletionResponse: Decodable {
    struct TokenProbability: Decodable {
        struct Candidate: Decodable {
            var id: Int
            var logprob: Double
        }
        var id: Int
        var logprob: Double
        var topLogprobs: [Candidate]?
    }
    struct Timings: Decodable {
        var promptMs: Double?
        var predictedMs: Double?
    }
    /// Every sampled token (the one that completed a stop string, and an end-of-generation token, included).
    var tokens: [Int]
    /// "eos", "word" (a stop string), "limit" (n_predict) or "none".
    var stopType: String?
    var tokensEvaluated: Int?
    /// One per generated token; when a stop string ended the text, the tokens of the stop string are left out.
    var completionProbabilities: [TokenProbability]?
    var timings: Timings?
}

/// llama.cpp's `GET /props`.
struct LlamaProps: Decodable {
    struct Settings: Decodable {
        var nCtx: Int?
    }
    var totalSlots: Int
    var defaultGenerationSettings: Settings?
    var modelPath: String?
}

/// `GET /v1/models`.
struct ModelList: Decodable {
    struct Model: Decodable {
        var id: String
    }
    var data: [Model]
}

/// `POST /v1/completions` with the prompt as token ids, as vLLM and SGLang accept it; `top_k`,
/// `min_p`, `repetition_penalty`, `include_stop_str_in_output` and `prompt_logprobs` are vLLM's
/// extensions of OpenAI's fields (SGLang takes the first four too).
struct CompletionsRequest: Encodable {
    var model: String
    var prompt: [Int]
    var maxTokens: Int
    var seed: UInt32
    var temperature: Float
    var topP: Float
    /// Left out when off (0).
    var topK: Int?
    var minP: Float
    var repetitionPenalty: Float
    var stop: [String]
    var n = 1
    /// The sampled token's log-probability at each step.
    var logprobs: Int?
    /// Each prompt token's log-probability (teacher-forced scoring).
    var promptLogprobs: Int?
    var includeStopStrInOutput = true
    var skipSpecialTokens = true
    var stream = false
}

struct CompletionsResponse: Decodable {
    struct Choice: Decodable {
        struct Logprobs: Decodable {
            var tokenLogprobs: [Double?]?
        }
        struct PromptLogprob: Decodable {
            var logprob: Double
        }
        var text: String
        /// "stop" (a stop string or the end of generation) or "length".
        var finishReason: String?
        var logprobs: Logprobs?
        /// One per prompt token (null for the first), keyed by token id.
        var promptLogprobs: [[String: PromptLogprob]?]?
    }
    struct Usage: Decodable {
        var promptTokens: Int?
        var completionTokens: Int?
    }
    var choices: [Choice]
    var usage: Usage?
}
