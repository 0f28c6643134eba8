import Foundation
import JSON

/// `config.json` of a `LlavaForConditionalGeneration` checkpoint: a vision tower, a two-layer
/// projector and a Llama-family language model. Both transformers spellings are read
/// (`image_token_id` / older `image_token_index`).
public struct LlavaConfig: Decodable, Sendable {
    public enum SelectStrategy: String, Sendable {
        /// Drops the first row (CLIP's class token) of every selected hidden state.
        case `default`
        /// Keeps every row.
        case full
    }

    public var textConfig: TextModelConfig
    public var visionConfig: VisionModelConfig
    public var imageTokenId: Int
    public var projectorHiddenAct: String
    public var projectorBias: Bool
    /// Indices into the vision tower's hidden states (0 = the embeddings entering the encoder,
    /// i = after layer i, negative from the end), concatenated along features in this order.
    public var visionFeatureLayers: [Int]
    public var selectStrategy: SelectStrategy

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: JSONKey.self)
        let type = try c.required(String.self, "model_type")
        guard type == "llava" else {
            throw ModelFormatError(.unsupportedArchitecture, "model_type '\(type)' is not a LLaVA model (expected llava)")
        }
        textConfig = try Self.textConfig(c.required([String: JSONValue].self, "text_config"))
        visionConfig = try c.required(VisionModelConfig.self, "vision_config")
        // transformers 5 may keep the tying flag at the top level only.
        if try c.optional(Bool.self, "tie_word_embeddings") == true { textConfig.tieWordEmbeddings = true }
        imageTokenId = try c.optional(Int.self, "image_token_id") ?? c.optional(Int.self, "image_token_index") ?? 32000
        projectorHiddenAct = try c.optional(String.self, "projector_hidden_act") ?? "gelu"
        projectorBias = try c.optional(Bool.self, "multimodal_projector_bias") ?? true
        if let layers = try? c.optional([Int].self, "vision_feature_layer") {
            visionFeatureLayers = layers
        } else {
            visionFeatureLayers = [try c.optional(Int.self, "vision_feature_layer") ?? -2]
        }
        let strategy = try c.optional(String.self, "vision_feature_select_strategy") ?? "default"
        guard let select = SelectStrategy(rawValue: strategy) else {
            throw ModelFormatError(.badConfig, "vision_feature_select_strategy '\(strategy)' is not supported (default, full)")
        }
        selectStrategy = select
        let states = visionConfig.numHiddenLayers + 1
        guard !visionFeatureLayers.isEmpty, visionFeatureLayers.allSatisfy({ (-states..<states).contains($0) }) else {
            throw ModelFormatError(
                .badConfig,
                "vision_feature_layer \(visionFeatureLayers) is outside the \(states) hidden states of a \(visionConfig.numHiddenLayers)-layer vision tower"
            )
        }
        guard imageTokenId >= 0 && imageTokenId < textConfig.vocabSize else {
            throw ModelFormatError(.badConfig, "image token id \(imageTokenId) is outside the vocabulary (0..<\(textConfig.vocabSize))")
        }
    }

    /// transformers' class defaults for the keys llava-hf configs leave out of `text_config`
    /// (they save only what differs from `LlamaConfig()` etc.).
    static let textDefaults: [String: [String: Int]] = [
        "llama": ["vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32],
        "mistral": [
            "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 8
        ],
        "qwen2": [
            "vocab_size": 151936, "hidden_size": 4096, "intermediate_size": 22016, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 32
        ]
    ]

    private static func textConfig(_ fields: [String: JSONValue]) throws -> TextModelConfig {
        var fields = fields
        if case .string(let type)? = fields["model_type"], let defaults = textDefaults[type] {
            for (key, value) in defaults where fields[key] == nil || fields[key] == .null { fields[key] = .number(Double(value)) }
        }
        do {
            return try JSONDecoder().decode(TextModelConfig.self, from: JSONEncoder().encode(fields))
        } catch let error as ModelFormatError {
            throw ModelFormatError(error.code, "text_config: \(error.message)")
        } catch let DecodingError.keyNotFound(key, _) {
            throw ModelFormatError(.badConfig, "missing key 'text_config.\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(type, context) {
            throw ModelFormatError(
                .badConfig, "key 'text_config.\(context.codingPath.map(\.stringValue).joined(separator: "."))' is not of type \(type)")
        }
    }

    /// The non-negative hidden-state index of each selected layer.
    public var featureStateIndices: [Int] {
        visionFeatureLayers.map { $0 < 0 ? visionConfig.numHiddenLayers + 1 + $0 : $0 }
    }

    /// Image features per image: the tower's rows, less the class token under `default`.
    public var imageTokenCount: Int {
        visionConfig.positionCount - (selectStrategy == .default ? 1 : 0)
    }

    public static func load(from directory: URL) throws -> LlavaConfig {
        let url = directory.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelFormatError(.fileNotFound, "\(url.path) does not exist")
        }
        return try decodeConfig(LlavaConfig.self, from: url)
    }
}
