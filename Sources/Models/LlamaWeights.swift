import ModelFormats

/// The tensors of a Llama-family decoder (Llama, Qwen2, Mistral share this layout), taken from a
/// checkpoint with their shapes checked. f32 tensors stay memory-mapped.
struct LlamaWeights {
    struct Layer {
        let inputNorm: FloatTensor          // model.layers.N.input_layernorm.weight (hidden)
        let q: FloatTensor                  // self_attn.q_proj.weight (heads·headDim, hidden)
        let k: FloatTensor                  // self_attn.k_proj.weight (kvHeads·headDim, hidden)
        let v: FloatTensor                  // self_attn.v_proj.weight (kvHeads·headDim, hidden)
        let o: FloatTensor                  // self_attn.o_proj.weight (hidden, heads·headDim)
        let qBias, kBias, vBias, oBias: FloatTensor?
        let postAttentionNorm: FloatTensor  // post_attention_layernorm.weight (hidden)
        let gate: FloatTensor               // mlp.gate_proj.weight (intermediate, hidden)
        let up: FloatTensor                 // mlp.up_proj.weight (intermediate, hidden)
        let down: FloatTensor               // mlp.down_proj.weight (hidden, intermediate)
        let gateBias, upBias, downBias: FloatTensor?
    }

    let embedding: FloatTensor   // model.embed_tokens.weight (vocab, hidden)
    let layers: [Layer]
    let finalNorm: FloatTensor   // model.norm.weight (hidden)
    let lmHead: FloatTensor      // lm_head.weight (vocab, hidden), or the embedding when tied

    var floatCount: Int {
        let perLayer = layers.map { l in
            [l.inputNorm, l.q, l.k, l.v, l.o, l.postAttentionNorm, l.gate, l.up, l.down].reduce(0) { $0 + $1.count }
                + [l.qBias, l.kBias, l.vBias, l.oBias, l.gateBias, l.upBias, l.downBias].reduce(0) { $0 + ($1?.count ?? 0) }
        }.reduce(0, +)
        return embedding.count + perLayer + finalNorm.count + (lmHead === embedding ? 0 : lmHead.count)
    }

    init(checkpoint: Checkpoint, config c: TextModelConfig) throws {
        let hidden = c.hiddenSize, qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        func tensor(_ name: String, _ shape: [Int]) throws -> FloatTensor { try checkpoint.floatTensor(name, shape: shape) }
        func bias(_ name: String, _ size: Int, _ present: Bool) throws -> FloatTensor? { present ? try tensor(name, [size]) : nil }

        embedding = try tensor("model.embed_tokens.weight", [c.vocabSize, hidden])
        layers = try (0..<c.numHiddenLayers).map { i in
            let p = "model.layers.\(i)."
            return Layer(
                inputNorm: try tensor(p + "input_layernorm.weight", [hidden]),
                q: try tensor(p + "self_attn.q_proj.weight", [qWidth, hidden]),
                k: try tensor(p + "self_attn.k_proj.weight", [kvWidth, hidden]),
                v: try tensor(p + "self_attn.v_proj.weight", [kvWidth, hidden]),
                o: try tensor(p + "self_attn.o_proj.weight", [hidden, qWidth]),
                qBias: try bias(p + "self_attn.q_proj.bias", qWidth, c.qkvBias),
                kBias: try bias(p + "self_attn.k_proj.bias", kvWidth, c.qkvBias),
                vBias: try bias(p + "self_attn.v_proj.bias", kvWidth, c.qkvBias),
                oBias: try bias(p + "self_attn.o_proj.bias", hidden, c.oProjBias),
                postAttentionNorm: try tensor(p + "post_attention_layernorm.weight", [hidden]),
                gate: try tensor(p + "mlp.gate_proj.weight", [c.intermediateSize, hidden]),
                up: try tensor(p + "mlp.up_proj.weight", [c.intermediateSize, hidden]),
                down: try tensor(p + "mlp.down_proj.weight", [hidden, c.intermediateSize]),
                gateBias: try bias(p + "mlp.gate_proj.bias", c.intermediateSize, c.mlpBias),
                upBias: try bias(p + "mlp.up_proj.bias", c.intermediateSize, c.mlpBias),
                downBias: try bias(p + "mlp.down_proj.bias", hidden, c.mlpBias))
        }
        finalNorm = try tensor("model.norm.weight", [hidden])
        // Tied checkpoints usually omit lm_head; some keep a copy, which is then taken (and used).
        if !c.tieWordEmbeddings || checkpoint.contains("lm_head.weight") {
            lmHead = try tensor("lm_head.weight", [c.vocabSize, hidden])
        } else {
            lmHead = embedding
        }
        // Old checkpoints carry RoPE's precomputed inverse frequencies; they are derived from config.
        try checkpoint.verifyAllConsumed(ignoring: { $0.hasSuffix("rotary_emb.inv_freq") })
    }
}
