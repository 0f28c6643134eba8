import Foundation
import ModelFormats
import Testing

/// config.json of Llama 3.2 Vision checkpoints: the hub's transformers 4.45 spelling, the class
/// defaults, the fixtures' transformers 5 spelling, bad values.
@Suite struct MllamaConfigTests {
    /// The keys of meta-llama/Llama-3.2-11B-Vision-Instruct's config.json (transformers 4.45 spelling:
    /// rope_theta + rope_scaling, torch_dtype, nulls for unset generation keys).
    static let hub = #"""
        {"architectures": ["MllamaForConditionalGeneration"], "image_token_index": 128256, "model_type": "mllama",
         "text_config": {"architectures": null, "bos_token_id": 128000, "cross_attention_layers": [3, 8, 13, 18, 23, 28, 33, 38],
                         "dropout": 0, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096,
                         "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
                         "model_type": "mllama_text_model", "num_attention_heads": 32, "num_hidden_layers": 40,
                         "num_key_value_heads": 8, "pad_token_id": 128004, "rms_norm_eps": 1e-05,
                         "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                          "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                         "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true,
                         "vocab_size": 128256},
         "torch_dtype": "bfloat16", "transformers_version": "4.45.0.dev0",
         "vision_config": {"attention_heads": 16, "hidden_act": "gelu", "hidden_size": 1280, "image_size": 560,
                           "intermediate_layers_indices": [3, 7, 15, 23, 30], "intermediate_size": 5120, "max_num_tiles": 4,
                           "model_type": "mllama_vision_model", "norm_eps": 1e-05, "num_channels": 3, "num_global_layers": 8,
                           "num_hidden_layers": 32, "patch_size": 14,
                           "supported_aspect_ratios": [[1, 1], [1, 2], [1, 3], [1, 4], [2, 1], [2, 2], [3, 1], [4, 1]],
                           "torch_dtype": "bfloat16", "vision_output_dim": 7680}}
        """#

    static func decode(_ json: String) throws -> MllamaConfig {
        try JSONDecoder().decode(MllamaConfig.self, from: Data(json.utf8))
    }

    @Test func hubConfig() throws {
        let c = try Self.decode(Self.hub)
        let t = c.textConfig, v = c.visionConfig
        #expect(t.hiddenSize == 4096 && t.numHiddenLayers == 40 && t.numKeyValueHeads == 8 && t.headDim == 128 && t.vocabSize == 128_256)
        #expect(t.ropeTheta == 500_000 && t.ropeScaling?.ropeType == "llama3" && t.ropeScaling?.originalMaxPositionEmbeddings == 8192)
        #expect(t.eosTokenIds == [128_001, 128_008, 128_009] && t.dtype == "bfloat16")
        #expect(c.crossAttentionLayers == [3, 8, 13, 18, 23, 28, 33, 38] && c.imageTokenId == 128_256)
        #expect(v.tileRows == 1601 && v.paddedTileRows == 1608 && v.aspectRatioIds == 9 && v.headDim == 80)
        #expect(v.visionOutputDim == 7680 && v.intermediateLayersIndices == [3, 7, 15, 23, 30] && v.numGlobalLayers == 8)
    }

    /// Nested configs may be empty: MllamaTextConfig's and MllamaVisionConfig's defaults (the 11B model).
    @Test func classDefaults() throws {
        let c = try Self.decode(#"{"model_type": "mllama", "text_config": {}, "vision_config": {}}"#)
        #expect(c.textConfig.numHiddenLayers == 40 && c.textConfig.intermediateSize == 14336 && c.textConfig.rmsNormEps == 1e-5)
        #expect(c.crossAttentionLayers == [3, 8, 13, 18, 23, 28, 33, 38] && c.imageTokenId == 128_256)
        #expect(c.visionConfig.imageSize == 448 && c.visionConfig.numHiddenLayers == 32 && c.visionConfig.hiddenAct == "gelu")
    }

    @Test(arguments: MllamaFixture.models)
    func fixtureConfigsDecode(_ name: String) throws {
        let c = try MllamaConfig.load(from: MllamaFixture.directory(name))
        let f = try MllamaFixture.load(name)
        #expect(c.imageTokenId == f.image_token_id && c.imageTokenId == c.textConfig.vocabSize)
        #expect(c.visionConfig.maxNumTiles == f.image.pixel_shape![0] && c.visionConfig.imageSize == f.image.pixel_shape![2])
    }

    @Test func badValuesAreNamed() {
        let cases: [(String, String, String)] = [
            (#""model_type": "mllama""#, #""model_type": "llava""#, "llava"),
            (#""cross_attention_layers": [3, 8"#, #""cross_attention_layers": [40, 8"#, "cross_attention_layers"),
            (#""cross_attention_layers": [3, 8"#, #""cross_attention_layers": [8, 8"#, "distinct"),
            (#""vision_output_dim": 7680"#, #""vision_output_dim": 6400"#, "vision_output_dim 6400"),
            (#""intermediate_layers_indices": [3, 7"#, #""intermediate_layers_indices": [32, 7"#, "intermediate_layers_indices"),
            (#""supported_aspect_ratios": [[1, 1]"#, #""supported_aspect_ratios": [[3, 2]"#, "supported_aspect_ratios"),
            (#""image_token_index": 128256"#, #""image_token_index": 128264"#, "image token id 128264"),
            (#""attention_heads": 16"#, #""attention_heads": 17"#, "attention_heads 17"),
            (#""hidden_size": 4096"#, #""hidden_size": 4001"#, "hidden_size 4001")
        ]
        for (from, to, mention) in cases {
            let json = Self.hub.replacingOccurrences(of: from, with: to)
            #expect(json != Self.hub, "\(from)")
            #expect { try Self.decode(json) } throws: { "\($0)".contains(mention) }
        }
    }
}
