import Foundation
import ModelFormats
import Testing

/// config.json of LLaVA checkpoints: both spellings, llava-hf's diff-only nested configs, bad values.
@Suite struct LlavaConfigTests {
    /// The shape of llava-hf/llava-1.5-7b-hf's config.json: nested configs hold only what differs
    /// from transformers' class defaults.
    static let llava15 = #"""
        {"architectures": ["LlavaForConditionalGeneration"], "ignore_index": -100, "image_token_index": 32000,
         "model_type": "llava", "pad_token_id": 32001, "projector_hidden_act": "gelu",
         "text_config": {"_name_or_path": "lmsys/vicuna-7b-v1.5", "architectures": ["LlamaForCausalLM"],
                         "max_position_embeddings": 4096, "model_type": "llama", "rms_norm_eps": 1e-05,
                         "torch_dtype": "float16", "vocab_size": 32064},
         "tie_word_embeddings": false, "torch_dtype": "float16", "transformers_version": "4.36.0.dev0",
         "vision_config": {"hidden_size": 1024, "image_size": 336, "intermediate_size": 4096,
                           "model_type": "clip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 24,
                           "patch_size": 14, "projection_dim": 768, "vocab_size": 32000},
         "vision_feature_layer": -2, "vision_feature_select_strategy": "default", "vocab_size": 32064}
        """#

    static func decode(_ json: String) throws -> LlavaConfig {
        try JSONDecoder().decode(LlavaConfig.self, from: Data(json.utf8))
    }

    @Test func llavaHubConfigTakesClassDefaults() throws {
        let c = try Self.decode(Self.llava15)
        #expect(c.textConfig.hiddenSize == 4096 && c.textConfig.intermediateSize == 11008)
        #expect(c.textConfig.numHiddenLayers == 32 && c.textConfig.numKeyValueHeads == 32 && c.textConfig.vocabSize == 32064)
        #expect(c.textConfig.rmsNormEps == 1e-5 && c.textConfig.maxPositionEmbeddings == 4096)
        #expect(c.visionConfig.family == .clip && c.visionConfig.hiddenAct == "quick_gelu" && c.visionConfig.layerNormEps == 1e-5)
        #expect(c.imageTokenId == 32000 && c.visionFeatureLayers == [-2] && c.featureStateIndices == [23])
        #expect(c.imageTokenCount == 576 && c.selectStrategy == .default && c.projectorBias)
    }

    @Test func fixtureConfigsDecode() throws {
        let siglip = try LlavaConfig.load(from: LlavaFixture.directory("llava-siglip-qwen2"))
        #expect(siglip.visionConfig.family == .siglip && siglip.visionFeatureLayers == [-3, -1] && siglip.featureStateIndices == [1, 3])
        #expect(siglip.imageTokenCount == 16 && siglip.textConfig.tieWordEmbeddings)
        let clip = try LlavaConfig.load(from: LlavaFixture.directory("llava-clip-list-full"))
        #expect(clip.imageTokenCount == 26 && clip.visionConfig.hiddenAct == "gelu")
    }

    @Test func badValuesAreNamed() {
        let cases: [(String, String, String)] = [
            (#""vision_feature_layer": -2"#, #""vision_feature_layer": -26"#, "vision_feature_layer"),
            (#""vision_feature_layer": -2"#, #""vision_feature_layer": [0, 25]"#, "vision_feature_layer"),
            (#""vision_feature_select_strategy": "default""#, #""vision_feature_select_strategy": "cls""#, "cls"),
            (#""model_type": "llava""#, #""model_type": "mllama""#, "mllama"),
            (#""model_type": "clip_vision_model""#, #""model_type": "dinov2""#, "dinov2"),
            (#""image_token_index": 32000"#, #""image_token_index": 40000"#, "image token id 40000"),
            (#""model_type": "llama""#, #""model_type": "gpt2""#, "gpt2")
        ]
        for (from, to, mention) in cases {
            let json = Self.llava15.replacingOccurrences(of: from, with: to)
            #expect(json != Self.llava15)
            #expect { try Self.decode(json) } throws: { "\($0)".contains(mention) }
        }
    }
}
