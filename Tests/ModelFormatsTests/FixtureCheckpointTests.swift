import Foundation
import Testing

@testable import ModelFormats

/// The tensors a Llama-family decoder needs, with the shapes its config implies (checkpoint keys
/// as transformers writes them). Loading every fixture through this list proves the config
/// decoding and the checkpoint agree with what transformers saved.
func expectedTensors(_ c: TextModelConfig) -> [(name: String, shape: [Int])] {
    let (h, q, kv, i) = (c.hiddenSize, c.numAttentionHeads * c.headDim, c.numKeyValueHeads * c.headDim, c.intermediateSize)
    var list: [(String, [Int])] = [("model.embed_tokens.weight", [c.vocabSize, h]), ("model.norm.weight", [h])]
    if !c.tieWordEmbeddings { list.append(("lm_head.weight", [c.vocabSize, h])) }
    for layer in 0..<c.numHiddenLayers {
        let p = "model.layers.\(layer)."
        list += [
            (p + "input_layernorm.weight", [h]), (p + "post_attention_layernorm.weight", [h]),
            (p + "self_attn.q_proj.weight", [q, h]), (p + "self_attn.k_proj.weight", [kv, h]),
            (p + "self_attn.v_proj.weight", [kv, h]), (p + "self_attn.o_proj.weight", [h, q]),
            (p + "mlp.gate_proj.weight", [i, h]), (p + "mlp.up_proj.weight", [i, h]), (p + "mlp.down_proj.weight", [h, i])
        ]
        if c.qkvBias {
            list += [(p + "self_attn.q_proj.bias", [q]), (p + "self_attn.k_proj.bias", [kv]), (p + "self_attn.v_proj.bias", [kv])]
        }
        if c.oProjBias { list.append((p + "self_attn.o_proj.bias", [h])) }
        if c.mlpBias {
            list += [(p + "mlp.gate_proj.bias", [i]), (p + "mlp.up_proj.bias", [i]), (p + "mlp.down_proj.bias", [h])]
        }
    }
    return list
}

@Suite struct FixtureCheckpointTests {
    static let f32Fixtures = ["llama-gqa", "llama3-rope-tied-bias", "qwen2", "mistral"]
    static let allFixtures = f32Fixtures + ["llama-sharded-bf16", "llama-f16"]

    @Test(arguments: allFixtures)
    func everyTensorIsFoundWithItsShapeAndNoneIsLeft(_ name: String) throws {
        let dir = modelFixtures.appendingPathComponent(name)
        let config = try TextModelConfig.load(from: dir)
        let checkpoint = try Checkpoint(directory: dir)
        let expected = expectedTensors(config)
        #expect(checkpoint.tensorNames == expected.map(\.name).sorted())
        for (tensorName, shape) in expected {
            let tensor = try checkpoint.floatTensor(tensorName, shape: shape)
            #expect(tensor.shape == shape)
            #expect(tensor.count == shape.reduce(1, *))
        }
        try checkpoint.verifyAllConsumed()
    }

    @Test(arguments: f32Fixtures)
    func f32WeightsAreMappedInPlace(_ name: String) throws {
        let checkpoint = try Checkpoint(directory: modelFixtures.appendingPathComponent(name))
        for tensorName in checkpoint.tensorNames {
            let info = try #require(checkpoint.info(tensorName))
            #expect(info.dtype == .f32)
            let tensor = try checkpoint.floatTensor(tensorName, shape: info.shape)
            let stored = try checkpoint.rawBytes(tensorName)
            #expect(tensor.isMapped)
            // The same address as the bytes in the file: no copy was made.
            #expect(UnsafeRawPointer(tensor.pointer) == stored.baseAddress)
            #expect(stored.count == tensor.count * 4)
        }
    }

    @Test(arguments: [("llama-sharded-bf16", DType.bf16), ("llama-f16", DType.f16)])
    func lowPrecisionWeightsAreWidenedIntoOwnedMemory(_ name: String, _ dtype: DType) throws {
        let checkpoint = try Checkpoint(directory: modelFixtures.appendingPathComponent(name))
        for tensorName in checkpoint.tensorNames {
            let info = try #require(checkpoint.info(tensorName))
            #expect(info.dtype == dtype)
            let tensor = try checkpoint.floatTensor(tensorName, shape: info.shape)
            #expect(!tensor.isMapped)
            #expect(Int(bitPattern: tensor.pointer) % 64 == 0)
            let stored = try checkpoint.rawBytes(tensorName)
            for index in [0, tensor.count / 2, tensor.count - 1] {
                let bits = stored.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)
                let widened = dtype == .bf16 ? Float(bitPattern: UInt32(bits) << 16) : Float(Float16(bitPattern: bits))
                #expect(tensor.pointer[index] == widened)
            }
        }
    }

    @Test func storedTensorsAreTheFileBytesUnconverted() throws {
        let checkpoint = try Checkpoint(directory: modelFixtures.appendingPathComponent("llama-sharded-bf16"))
        for tensorName in checkpoint.tensorNames {
            let shape = try #require(checkpoint.info(tensorName)).shape
            let (info, bytes) = try checkpoint.storedTensor(tensorName, shape: shape)
            #expect(info.dtype == .bf16)
            #expect(bytes.count == info.elementCount * 2)
            #expect(bytes.baseAddress == (try checkpoint.rawBytes(tensorName)).baseAddress)
        }
        try checkpoint.verifyAllConsumed()
        expectError(.shapeMismatch, mentioning: ["model.norm.weight", "model-0000"]) {
            _ = try checkpoint.storedTensor("model.norm.weight", shape: [65])
        }
    }

    @Test func shardedIndexResolvesEachTensorToItsShard() throws {
        let dir = modelFixtures.appendingPathComponent("llama-sharded-bf16")
        let checkpoint = try Checkpoint(directory: dir)
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(Checkpoint.indexFileName)))
        let weightMap = try #require((index as? [String: Any])?["weight_map"] as? [String: String])
        #expect(Set(weightMap.values).count >= 2)
        #expect(checkpoint.tensorNames == weightMap.keys.sorted())
        for (name, shard) in weightMap {
            #expect(checkpoint.info(name)?.file.lastPathComponent == shard)
        }
    }

    /// torch's widening of every 7th f16/bf16 bit pattern (and the special values) must be ours, bit for bit.
    @Test(arguments: ["f16", "bf16"])
    func conversionMatchesTorch(_ dtype: String) throws {
        let checkpoint = try Checkpoint(directory: modelFixtures.appendingPathComponent("dtype-conversion"))
        let count = try #require(checkpoint.info(dtype)?.shape.first)
        let converted = try checkpoint.floatTensor(dtype, shape: [count])
        let reference = try checkpoint.floatTensor(dtype + "_as_f32", shape: [count])
        var mismatches = 0
        for i in 0..<count {
            let (a, b) = (converted.pointer[i], reference.pointer[i])
            if !(a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN)) { mismatches += 1 }
        }
        #expect(count > 9000)
        #expect(mismatches == 0)
        try checkpoint.verifyAllConsumed(ignoring: { !$0.hasPrefix(dtype) })
    }

    @Test func zerosAreOwnedAndWritable() {
        let tensor = FloatTensor.zeros(shape: [3, 5])
        #expect(!tensor.isMapped)
        #expect(tensor.count == 15)
        #expect(tensor.buffer.allSatisfy { $0 == 0 })
        tensor.mutablePointer[14] = 2.5
        #expect(tensor.pointer[14] == 2.5)
        #expect(Int(bitPattern: tensor.pointer) % 64 == 0)
    }
}
