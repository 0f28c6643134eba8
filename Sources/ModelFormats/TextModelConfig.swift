import Foundation
import JSON

/// `config.json` of a text decoder (Llama, Qwen2, Mistral). Optional keys take the defaults of
/// the transformers configuration classes; both the transformers 4.x spelling
/// (`rope_theta`, `rope_scaling`, `torch_dtype`) and the 5.x one (`rope_parameters`, `dtype`) are read.
public struct TextModelConfig: Decodable, Sendable {
    public static let supportedArchitectures = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"]
    public static let supportedModelTypes = ["llama", "mistral", "qwen2"]
    /// The same decoders with a `score` head instead of the language-model head (reward models).
    public static let sequenceClassificationArchitectures = [
        "LlamaForSequenceClassification", "MistralForSequenceClassification", "Qwen2ForSequenceClassification"
    ]

    public var architectures: [String]
    public var modelType: String
    public var hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads: Int
    /// Per-head width; given explicitly it may differ from hiddenSize / numAttentionHeads.
    public var headDim: Int
    public var vocabSize, maxPositionEmbeddings: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    /// nil for plain RoPE (`rope_type` "default" or no scaling given).
    public var ropeScaling: RopeScaling?
    public var tieWordEmbeddings: Bool
    /// Llama: `attention_bias` (q, k, v and o projections). Qwen2: true, meaning q/k/v only —
    /// use `qkvBias` and `oProjBias`, which are exact for every model type.
    public var attentionBias: Bool
    /// Whether q_proj, k_proj and v_proj have a bias (Llama: attention_bias; Qwen2: always; Mistral: never).
    public var qkvBias: Bool
    /// Whether o_proj has a bias (Llama: attention_bias; Qwen2 and Mistral: never).
    public var oProjBias: Bool
    public var mlpBias: Bool
    public var hiddenAct: String
    public var bosTokenId: Int?
    /// `eos_token_id` as a list (it may be written as an int, a list or null).
    public var eosTokenIds: [Int]
    /// Attention window: Mistral's `sliding_window` when set; Qwen2's only when `use_sliding_window` is true.
    public var slidingWindow: Int?
    /// The dtype the checkpoint was saved in (`dtype` or `torch_dtype`), e.g. "bfloat16".
    public var dtype: String?

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: JSONKey.self)
        architectures = try c.optional([String].self, "architectures") ?? []
        modelType = try c.required(String.self, "model_type")
        guard Self.supportedModelTypes.contains(modelType) else {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "model_type '\(modelType)' is not supported (supported: \(Self.supportedModelTypes.joined(separator: ", ")))")
        }
        hiddenSize = try c.required(Int.self, "hidden_size")
        intermediateSize = try c.required(Int.self, "intermediate_size")
        numHiddenLayers = try c.required(Int.self, "num_hidden_layers")
        numAttentionHeads = try c.required(Int.self, "num_attention_heads")
        numKeyValueHeads = try c.optional(Int.self, "num_key_value_heads") ?? numAttentionHeads
        vocabSize = try c.required(Int.self, "vocab_size")
        guard hiddenSize > 0, intermediateSize > 0, numHiddenLayers > 0, numAttentionHeads > 0, numKeyValueHeads > 0, vocabSize > 0 else {
            throw ModelFormatError(
                .badConfig,
                "hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads and vocab_size must be positive"
            )
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw ModelFormatError(
                .badConfig, "num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(numKeyValueHeads)")
        }
        if let given = try c.optional(Int.self, "head_dim") {
            headDim = given
        } else {
            guard hiddenSize % numAttentionHeads == 0 else {
                throw ModelFormatError(
                    .badConfig, "no head_dim, and hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
            }
            headDim = hiddenSize / numAttentionHeads
        }
        guard headDim > 0, headDim % 2 == 0 else {
            throw ModelFormatError(.badConfig, "head_dim \(headDim) must be positive and even (RoPE rotates pairs)")
        }
        maxPositionEmbeddings = try c.optional(Int.self, "max_position_embeddings") ?? Self.defaultMaxPositions[modelType]!

        rmsNormEps = try c.optional(Float.self, "rms_norm_eps") ?? 1e-6
        // transformers 5 folds rope_theta and the scaling into rope_parameters.
        let parameters = try c.optional(RopeParameters.self, "rope_parameters")
        ropeTheta = try parameters?.ropeTheta ?? c.optional(Float.self, "rope_theta") ?? 10_000
        let scaling = try parameters?.scaling ?? c.optional(RopeScaling.self, "rope_scaling")
        ropeScaling = scaling?.ropeType == "default" ? nil : scaling

        tieWordEmbeddings = try c.optional(Bool.self, "tie_word_embeddings") ?? false
        mlpBias = try c.optional(Bool.self, "mlp_bias") ?? false
        let givenAttentionBias = try c.optional(Bool.self, "attention_bias") ?? false
        switch modelType {
        case "qwen2": (qkvBias, oProjBias) = (true, false)
        case "mistral": (qkvBias, oProjBias) = (false, false)
        default: (qkvBias, oProjBias) = (givenAttentionBias, givenAttentionBias)
        }
        attentionBias = qkvBias
        hiddenAct = try c.optional(String.self, "hidden_act") ?? "silu"

        bosTokenId = try c.optional(Int.self, "bos_token_id")
        eosTokenIds = try c.tokenIds("eos_token_id")
        let window = try c.optional(Int.self, "sliding_window")
        if modelType == "qwen2" {
            slidingWindow = try c.optional(Bool.self, "use_sliding_window") == true ? window : nil
        } else {
            slidingWindow = modelType == "mistral" ? window : nil
        }
        dtype = try c.optional(String.self, "dtype") ?? c.optional(String.self, "torch_dtype")
    }

    /// transformers' defaults when `max_position_embeddings` is absent.
    private static let defaultMaxPositions = ["llama": 2048, "mistral": 131_072, "qwen2": 32768]

    /// Reads `config.json` in a model directory. Errors name the file and the key at fault; an
    /// architecture other than the supported ones is `unsupportedArchitecture`.
    public static func load(from directory: URL) throws -> TextModelConfig {
        let url = directory.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelFormatError(.fileNotFound, "\(url.path) does not exist")
        }
        let config = try decodeConfig(TextModelConfig.self, from: url)
        let known = supportedArchitectures + sequenceClassificationArchitectures
        if !config.architectures.isEmpty, !config.architectures.contains(where: known.contains) {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "\(url.path): architectures \(config.architectures) are not supported (supported: \(known.joined(separator: ", ")))"
            )
        }
        return config
    }
}

/// transformers 5.x `rope_parameters`: `rope_theta` plus, for scaled RoPE, the `rope_scaling` keys.
private struct RopeParameters: Decodable {
    var ropeTheta: Float?
    var scaling: RopeScaling?

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: JSONKey.self)
        ropeTheta = try c.optional(Float.self, "rope_theta")
        let hasType = c.contains(JSONKey("rope_type")) || c.contains(JSONKey("type"))
        scaling = hasType ? try RopeScaling(from: decoder) : nil
    }
}
