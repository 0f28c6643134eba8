import Foundation
import Testing

@testable import ModelFormats

/// Config spellings found in the wild, written at runtime (transformers 4.x keys; the 5.x ones are
/// covered by the saved fixtures in FixtureConfigTests).
@Suite struct ConfigDecodingTests {
    func load(_ json: String) throws -> TextModelConfig {
        let dir = try TemporaryDirectory()
        try dir.write("config.json", json)
        return try TextModelConfig.load(from: dir.url)
    }

    @Test func llama3LegacyKeys() throws {
        let config = try load(
            """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
             "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
             "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
             "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "torch_dtype": "bfloat16",
             "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"},
             "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "tie_word_embeddings": false}
            """)
        #expect(config.headDim == 128)
        #expect(config.numKeyValueHeads == 8)
        #expect(config.ropeTheta == 500_000)
        #expect(config.rmsNormEps == 1e-5)
        #expect(
            config.ropeScaling
                == RopeScaling(
                    ropeType: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4,
                    originalMaxPositionEmbeddings: 8192))
        #expect(config.eosTokenIds == [128001, 128008, 128009])
        #expect(config.bosTokenId == 128000)
        #expect(config.dtype == "bfloat16")
        #expect(!config.qkvBias && !config.oProjBias && !config.mlpBias)
        #expect(config.slidingWindow == nil)
    }

    @Test func minimalLlamaTakesDefaults() throws {
        let config = try load(
            """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "vocab_size": 100, "rope_scaling": null, "eos_token_id": null}
            """)
        #expect(config.numKeyValueHeads == 4)
        #expect(config.headDim == 16)
        #expect(config.ropeTheta == 10_000)
        #expect(config.ropeScaling == nil)
        #expect(config.eosTokenIds == [])
        #expect(config.bosTokenId == nil)
        #expect(config.maxPositionEmbeddings == 2048)
        #expect(config.hiddenAct == "silu")
        #expect(!config.tieWordEmbeddings)
        #expect(config.architectures == [])
    }

    @Test func oldRopeScalingTypeKey() throws {
        let config = try load(
            """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "vocab_size": 100, "rope_scaling": {"type": "linear", "factor": 2.0}}
            """)
        #expect(config.ropeScaling == RopeScaling(ropeType: "linear", factor: 2))
    }

    @Test func qwen2WindowOnlyWhenEnabled() throws {
        let base = """
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896,
            "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
            "num_key_value_heads": 2, "vocab_size": 151936, "rope_theta": 1000000.0,
            "sliding_window": 32768, "tie_word_embeddings": true, "bos_token_id": 151643, "eos_token_id": 151645
            """
        let off = try load("{\(base), \"use_sliding_window\": false}")
        #expect(off.slidingWindow == nil)
        #expect(off.qkvBias && !off.oProjBias && off.attentionBias)
        #expect(off.eosTokenIds == [151645])
        #expect(off.headDim == 64)
        #expect(off.tieWordEmbeddings)
        #expect(off.ropeTheta == 1_000_000)
        let on = try load("{\(base), \"use_sliding_window\": true}")
        #expect(on.slidingWindow == 32768)
    }

    @Test func llamaAttentionBiasCoversAllFourProjections() throws {
        let config = try load(
            """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "vocab_size": 100, "attention_bias": true, "mlp_bias": true, "head_dim": 24}
            """)
        #expect(config.qkvBias && config.oProjBias && config.mlpBias)
        #expect(config.headDim == 24)
    }

    @Test func missingRequiredKeyIsNamed() throws {
        let dir = try TemporaryDirectory()
        try dir.write(
            "config.json",
            """
            {"model_type": "llama", "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}
            """)
        expectError(.badConfig, mentioning: ["hidden_size", "config.json"]) { _ = try TextModelConfig.load(from: dir.url) }
    }

    @Test func wrongTypeIsNamed() throws {
        let dir = try TemporaryDirectory()
        try dir.write(
            "config.json",
            """
            {"model_type": "llama", "hidden_size": "64", "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}
            """)
        expectError(.badConfig, mentioning: ["hidden_size", "config.json"]) { _ = try TextModelConfig.load(from: dir.url) }
    }

    @Test func notJSONIsBadConfig() throws {
        let dir = try TemporaryDirectory()
        try dir.write("config.json", "{\"model_type\": \"llama\",")
        expectError(.badConfig, mentioning: ["config.json"]) { _ = try TextModelConfig.load(from: dir.url) }
    }

    @Test func headsMustDivideIntoKVGroups() throws {
        let dir = try TemporaryDirectory()
        try dir.write(
            "config.json",
            """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 100}
            """)
        expectError(.badConfig, mentioning: ["num_key_value_heads", "config.json"]) { _ = try TextModelConfig.load(from: dir.url) }
    }

    @Test func unknownArchitectureListsSupportedOnes() throws {
        let dir = try TemporaryDirectory()
        try dir.write(
            "config.json",
            """
            {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 64}
            """)
        expectError(.unsupportedArchitecture, mentioning: ["gpt_neox", "llama", "qwen2", "config.json"]) {
            _ = try TextModelConfig.load(from: dir.url)
        }
    }

    @Test func missingConfigFile() throws {
        let dir = try TemporaryDirectory()
        expectError(.fileNotFound, mentioning: ["config.json", dir.url.path]) { _ = try TextModelConfig.load(from: dir.url) }
        #expect(try GenerationConfig.load(from: dir.url) == nil)
    }

    @Test func generationConfigForms() throws {
        let dir = try TemporaryDirectory()
        try dir.write(
            "generation_config.json",
            """
            {"bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643], "repetition_penalty": 1.05,
             "temperature": 0.7, "top_k": 20, "top_p": 0.8}
            """)
        let config = try #require(try GenerationConfig.load(from: dir.url))
        #expect(config.eosTokenIds == [151645, 151643])
        #expect(config.bosTokenId == 151643)
        #expect(config.doSample == true)
        #expect(config.temperature == 0.7)
        #expect(config.topK == 20)
        #expect(config.topP == 0.8)
        #expect(config.repetitionPenalty == 1.05)
        try dir.write("generation_config.json", "{\"eos_token_id\": \"x\"}")
        expectError(.badConfig, mentioning: ["eos_token_id", "generation_config.json"]) { _ = try GenerationConfig.load(from: dir.url) }
    }
}
