import Foundation
import Testing

@testable import ModelFormats

/// Configs as transformers 5 `save_pretrained` writes them (`rope_parameters`, `dtype`).
@Suite struct FixtureConfigTests {
    func config(_ name: String) throws -> TextModelConfig {
        try TextModelConfig.load(from: modelFixtures.appendingPathComponent(name))
    }

    @Test func llamaGQA() throws {
        let c = try config("llama-gqa")
        #expect(c.architectures == ["LlamaForCausalLM"] && c.modelType == "llama")
        #expect((c.hiddenSize, c.intermediateSize, c.numHiddenLayers) == (64, 128, 2))
        #expect((c.numAttentionHeads, c.numKeyValueHeads, c.headDim) == (4, 2, 16))
        #expect(c.vocabSize == 405 && c.maxPositionEmbeddings == 1024)
        #expect(c.rmsNormEps == 1e-5 && c.ropeTheta == 500_000 && c.ropeScaling == nil)
        #expect(!c.tieWordEmbeddings && !c.qkvBias && !c.oProjBias && !c.mlpBias)
        #expect(c.bosTokenId == 400 && c.eosTokenIds == [401])
        #expect(c.dtype == "float32" && c.hiddenAct == "silu" && c.slidingWindow == nil)
    }

    @Test func llama3RopeTiedBias() throws {
        let c = try config("llama3-rope-tied-bias")
        #expect(c.headDim == 24 && c.numKeyValueHeads == 1)
        #expect(c.ropeTheta == 10_000)
        #expect(
            c.ropeScaling
                == RopeScaling(
                    ropeType: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4,
                    originalMaxPositionEmbeddings: 64))
        #expect(c.tieWordEmbeddings && c.qkvBias && c.oProjBias && c.mlpBias && c.attentionBias)
        #expect(c.eosTokenIds == [401, 404])
    }

    @Test func qwen2() throws {
        let c = try config("qwen2")
        #expect(c.modelType == "qwen2")
        #expect(c.qkvBias && !c.oProjBias && !c.mlpBias)
        #expect(c.tieWordEmbeddings && c.ropeTheta == 1_000_000 && c.rmsNormEps == 1e-6)
        #expect(c.bosTokenId == 400 && c.eosTokenIds == [402])
        #expect(c.slidingWindow == nil)
        let generation = try #require(try GenerationConfig.load(from: modelFixtures.appendingPathComponent("qwen2")))
        #expect(generation.eosTokenIds == [402, 400] && generation.repetitionPenalty == 1.05 && generation.topK == 20)
    }

    @Test func mistral() throws {
        let c = try config("mistral")
        #expect(c.modelType == "mistral" && c.slidingWindow == 4096)
        #expect(!c.qkvBias && !c.oProjBias && c.headDim == 16 && c.intermediateSize == 160)
    }

    @Test func lowPrecisionDTypes() throws {
        #expect(try config("llama-sharded-bf16").dtype == "bfloat16")
        #expect(try config("llama-f16").dtype == "float16")
        let generation = try #require(try GenerationConfig.load(from: modelFixtures.appendingPathComponent("llama-f16")))
        #expect(generation.eosTokenIds == [401, 404] && generation.bosTokenId == 400)
        #expect(generation.temperature == 0.6 && generation.topP == 0.9 && generation.doSample == true)
    }
}
