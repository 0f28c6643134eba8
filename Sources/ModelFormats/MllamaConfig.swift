import Foundation
import JSON

/// `config.json` of a `MllamaForConditionalGeneration` checkpoint (Llama 3.2 Vision): a tiled vision
/// encoder, a linear projector and a Llama 3 decoder with interleaved cross-attention layers.
/// Keys left out take the defaults of transformers' `MllamaVisionConfig` / `MllamaTextConfig`.
public struct MllamaConfig: Decodable, Sendable {
    /// The decoder as a Llama config (RoPE, sizes, norms); `vocabSize` is `lm_head`'s vocabulary —
    /// the embedding table has `vocabSize + 8` rows.
    public var textConfig: TextModelConfig
    /// Decoder layers that cross-attend to the image instead of self-attending, ascending.
    public var crossAttentionLayers: [Int]
    public var visionConfig: MllamaVisionConfig
    /// `image_token_index` (alias `image_token_id`): the `<|image|>` token, usually the first extra
    /// embedding row (128256 for Llama 3.2 Vision).
    public var imageTokenId: Int

    /// Rows the embedding table has beyond `lm_head`'s vocabulary (transformers' `vocab_size + 8`).
    public static let extraEmbeddingRows = 8

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: JSONKey.self)
        let type = try c.required(String.self, "model_type")
        guard type == "mllama" else {
            throw ModelFormatError(.unsupportedArchitecture, "model_type '\(type)' is not a Llama 3.2 Vision model (expected mllama)")
        }
        let text = try c.optional([String: JSONValue].self, "text_config") ?? [:]
        textConfig = try Self.textConfig(text)
        crossAttentionLayers = try Self.crossAttentionLayers(text["cross_attention_layers"], layers: textConfig.numHiddenLayers)
        visionConfig = try c.optional(MllamaVisionConfig.self, "vision_config") ?? MllamaVisionConfig.defaults()
        imageTokenId = try c.optional(Int.self, "image_token_index") ?? c.optional(Int.self, "image_token_id") ?? 128_256
        let rows = textConfig.vocabSize + Self.extraEmbeddingRows
        guard imageTokenId >= 0 && imageTokenId < rows else {
            throw ModelFormatError(.badConfig, "image token id \(imageTokenId) is outside the embedding table (0..<\(rows))")
        }
        guard textConfig.hiddenSize % textConfig.numAttentionHeads == 0 else {
            throw ModelFormatError(
                .badConfig,
                "text_config: hidden_size \(textConfig.hiddenSize) is not a multiple of num_attention_heads \(textConfig.numAttentionHeads)"
            )
        }
    }

    /// `MllamaTextConfig`'s defaults (Llama 3.2 11B Vision's decoder) for the keys a config leaves out.
    static let textDefaults: [String: JSONValue] = [
        "vocab_size": .number(128_256), "hidden_size": .number(4096), "intermediate_size": .number(14_336),
        "num_hidden_layers": .number(40), "num_attention_heads": .number(32), "num_key_value_heads": .number(8),
        "rms_norm_eps": .number(1e-5), "max_position_embeddings": .number(131_072), "rope_theta": .number(500_000),
        "bos_token_id": .number(128_000), "eos_token_id": .number(128_001), "tie_word_embeddings": .bool(false)
    ]

    private static func textConfig(_ given: [String: JSONValue]) throws -> TextModelConfig {
        var fields = given
        for (key, value) in textDefaults where fields[key] == nil || fields[key] == .null { fields[key] = value }
        // Decoded as the Llama decoder it is. transformers' Mllama attention always uses
        // hidden_size / num_attention_heads per head, so a stray head_dim is not read.
        fields["model_type"] = .string("llama")
        fields["head_dim"] = nil
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

    private static func crossAttentionLayers(_ raw: JSONValue?, layers: Int) throws -> [Int] {
        let indices: [Int]
        switch raw {
        case nil, .null?: indices = [3, 8, 13, 18, 23, 28, 33, 38]
        case .array(let list)?:
            indices = try list.map {
                guard case .number(let n) = $0, n == n.rounded() else {
                    throw ModelFormatError(.badConfig, "text_config.cross_attention_layers must be a list of integers")
                }
                return Int(n)
            }
        default: throw ModelFormatError(.badConfig, "text_config.cross_attention_layers must be a list of integers")
        }
        guard indices.allSatisfy({ (0..<layers).contains($0) }), Set(indices).count == indices.count else {
            throw ModelFormatError(
                .badConfig, "text_config.cross_attention_layers \(indices) must be distinct layers of the \(layers)-layer decoder")
        }
        return indices.sorted()
    }

    public static func load(from directory: URL) throws -> MllamaConfig {
        let url = directory.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ModelFormatError(.fileNotFound, "\(url.path) does not exist")
        }
        return try decodeConfig(MllamaConfig.self, from: url)
    }
}

/// The `vision_config` of a Llama 3.2 Vision checkpoint: a ViT over tiles, whose local encoder's
/// chosen layers are concatenated with a gated global encoder's output.
public struct MllamaVisionConfig: Decodable, Sendable {
    public var hiddenSize, intermediateSize, numHiddenLayers, numGlobalLayers, numAttentionHeads: Int
    public var numChannels, imageSize, patchSize, maxNumTiles: Int
    /// Width of the vision output: `hiddenSize · (intermediateLayersIndices.count + 1)`.
    public var visionOutputDim: Int
    public var hiddenAct: String
    /// Epsilon of the encoder layers' norms (`layernorm_pre`/`_post` use torch's default 1e-5).
    public var normEps: Float
    /// Local-encoder layers (0-based, output of that layer) whose states join the output, in this order.
    public var intermediateLayersIndices: [Int]
    /// (tiles high, tiles wide) arrangements; only their count matters to the model (it sizes the
    /// aspect-ratio embedding tables: id 0 is "no image", id i the i-th arrangement).
    public var supportedAspectRatios: [[Int]]

    /// Patches along a tile's side.
    public var patchesPerSide: Int { imageSize / patchSize }
    /// Rows of one tile: its patches plus the class token.
    public var tileRows: Int { patchesPerSide * patchesPerSide + 1 }
    /// Tile rows padded to a multiple of 8, as the encoders see them.
    public var paddedTileRows: Int { (tileRows + 7) / 8 * 8 }
    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Rows of the aspect-ratio embedding tables.
    public var aspectRatioIds: Int { supportedAspectRatios.count + 1 }

    static func defaults() -> MllamaVisionConfig {
        try! JSONDecoder().decode(MllamaVisionConfig.self, from: Data("{}".utf8))
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: JSONKey.self)
        hiddenSize = try c.optional(Int.self, "hidden_size") ?? 1280
        intermediateSize = try c.optional(Int.self, "intermediate_size") ?? 5120
        numHiddenLayers = try c.optional(Int.self, "num_hidden_layers") ?? 32
        numGlobalLayers = try c.optional(Int.self, "num_global_layers") ?? 8
        numAttentionHeads = try c.optional(Int.self, "attention_heads") ?? c.optional(Int.self, "num_attention_heads") ?? 16
        numChannels = try c.optional(Int.self, "num_channels") ?? 3
        imageSize = try c.optional(Int.self, "image_size") ?? 448
        patchSize = try c.optional(Int.self, "patch_size") ?? 14
        maxNumTiles = try c.optional(Int.self, "max_num_tiles") ?? 4
        visionOutputDim = try c.optional(Int.self, "vision_output_dim") ?? 7680
        hiddenAct = try c.optional(String.self, "hidden_act") ?? "gelu"
        normEps = try c.optional(Float.self, "norm_eps") ?? 1e-5
        intermediateLayersIndices = try c.optional([Int].self, "intermediate_layers_indices") ?? [3, 7, 15, 23, 30]
        supportedAspectRatios =
            try c.optional([[Int]].self, "supported_aspect_ratios")
            ?? [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]]

        func fail(_ message: String) -> ModelFormatError { ModelFormatError(.badConfig, "vision_config: \(message)") }
        guard hiddenSize > 0, intermediateSize > 0, numHiddenLayers > 0, numGlobalLayers >= 0, numAttentionHeads > 0,
            patchSize > 0, imageSize >= patchSize, maxNumTiles > 0
        else {
            throw fail(
                "hidden_size, intermediate_size, num_hidden_layers, attention_heads, patch_size and max_num_tiles must be positive, num_global_layers not negative, image_size at least patch_size"
            )
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw fail("hidden_size \(hiddenSize) is not a multiple of attention_heads \(numAttentionHeads)")
        }
        guard numChannels == 3 else { throw fail("num_channels \(numChannels) is not supported (images are RGB)") }
        guard intermediateLayersIndices.allSatisfy({ (0..<numHiddenLayers).contains($0) }) else {
            throw fail(
                "intermediate_layers_indices \(intermediateLayersIndices) are not all layers of the \(numHiddenLayers)-layer encoder")
        }
        guard visionOutputDim == hiddenSize * (intermediateLayersIndices.count + 1) else {
            throw fail(
                "vision_output_dim \(visionOutputDim) is not hidden_size \(hiddenSize) × (\(intermediateLayersIndices.count) intermediate layers + 1)"
            )
        }
        guard supportedAspectRatios.allSatisfy({ $0.count == 2 && $0[0] > 0 && $0[1] > 0 && $0[0] * $0[1] <= maxNumTiles }) else {
            throw fail(
                "supported_aspect_ratios \(supportedAspectRatios) must be [tiles high, tiles wide] pairs of at most max_num_tiles \(maxNumTiles) tiles"
            )
        }
    }
}
