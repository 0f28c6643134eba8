import Foundation
import Kernels
import ModelFormats

/// The tensors of a Llama 3.2 Vision decoder under `names` (`language_model.model.` +
/// `language_model.lm_head.weight`, or `model.language_model.` + `lm_head.weight`), shapes checked.
/// Matrices stay mapped in their stored dtype; norms and gates are widened to f32.
struct MllamaTextWeights {
    /// A Llama self-attention layer; `cache` is its layer index in the KV cache (cross layers keep none).
    struct SelfAttention {
        let cache: Int
        let q, k, v, o: WeightMatrix // self_attn.{q,k,v,o}_proj.weight
    }

    /// A cross-attention layer: queries from the text, keys and values from the image; no RoPE.
    struct CrossAttention {
        /// Index among the cross layers (into an image's precomputed keys and values).
        let index: Int
        let q: WeightMatrix // cross_attn.q_proj.weight (heads·headDim, hidden)
        let k, v: WeightMatrix // cross_attn.{k,v}_proj.weight (kvHeads·headDim, hidden)
        let o: WeightMatrix // cross_attn.o_proj.weight (hidden, heads·headDim)
        let qNorm, kNorm: FloatTensor // cross_attn.{q,k}_norm.weight (headDim): RMSNorm per head
        /// tanh of cross_attn_attn_gate and cross_attn_mlp_gate (1).
        let attentionGate, mlpGate: Float
    }

    struct Layer {
        let inputNorm: FloatTensor // input_layernorm.weight (hidden)
        let selfAttention: SelfAttention?
        let crossAttention: CrossAttention?
        let postAttentionNorm: FloatTensor // post_attention_layernorm.weight (hidden)
        let gate, up: WeightMatrix // mlp.{gate,up}_proj.weight (intermediate, hidden)
        let down: WeightMatrix // mlp.down_proj.weight (hidden, intermediate)
    }

    let checkpoint: any WeightSource
    let embedding: WeightMatrix // embed_tokens.weight (vocab + 8, hidden)
    let layers: [Layer]
    let finalNorm: FloatTensor // norm.weight (hidden)
    let lmHead: WeightMatrix // lm_head.weight (vocab, hidden)

    init(checkpoint: any WeightSource, config: MllamaConfig, names: LlamaTensorNames) throws {
        self.checkpoint = checkpoint
        let c = config.textConfig
        let hidden = c.hiddenSize, headDim = hidden / c.numAttentionHeads
        let qWidth = c.numAttentionHeads * headDim, kvWidth = c.numKeyValueHeads * headDim
        func vector(_ name: String, _ size: Int) throws -> FloatTensor { try checkpoint.floatTensor(name, shape: [size]) }
        func matrix(_ name: String, _ rows: Int, _ columns: Int) throws -> WeightMatrix {
            try checkpoint.productMatrix(name, rows: rows, columns: columns)
        }
        embedding = try checkpoint.weightMatrix(
            names.decoder + "embed_tokens.weight", rows: c.vocabSize + MllamaConfig.extraEmbeddingRows, columns: hidden)
        var selfLayers = 0
        layers = try (0..<c.numHiddenLayers).map { i in
            let p = names.decoder + "layers.\(i)."
            var selfAttention: SelfAttention?, crossAttention: CrossAttention?
            if let index = config.crossAttentionLayers.firstIndex(of: i) {
                crossAttention = CrossAttention(
                    index: index,
                    q: try matrix(p + "cross_attn.q_proj.weight", qWidth, hidden),
                    k: try matrix(p + "cross_attn.k_proj.weight", kvWidth, hidden),
                    v: try matrix(p + "cross_attn.v_proj.weight", kvWidth, hidden),
                    o: try matrix(p + "cross_attn.o_proj.weight", hidden, qWidth),
                    qNorm: try vector(p + "cross_attn.q_norm.weight", headDim),
                    kNorm: try vector(p + "cross_attn.k_norm.weight", headDim),
                    attentionGate: tanhf(try checkpoint.scalar(p + "cross_attn_attn_gate")),
                    mlpGate: tanhf(try checkpoint.scalar(p + "cross_attn_mlp_gate")))
            } else {
                selfAttention = SelfAttention(
                    cache: selfLayers,
                    q: try matrix(p + "self_attn.q_proj.weight", qWidth, hidden),
                    k: try matrix(p + "self_attn.k_proj.weight", kvWidth, hidden),
                    v: try matrix(p + "self_attn.v_proj.weight", kvWidth, hidden),
                    o: try matrix(p + "self_attn.o_proj.weight", hidden, qWidth))
                selfLayers += 1
            }
            return Layer(
                inputNorm: try vector(p + "input_layernorm.weight", hidden),
                selfAttention: selfAttention, crossAttention: crossAttention,
                postAttentionNorm: try vector(p + "post_attention_layernorm.weight", hidden),
                gate: try matrix(p + "mlp.gate_proj.weight", c.intermediateSize, hidden),
                up: try matrix(p + "mlp.up_proj.weight", c.intermediateSize, hidden),
                down: try matrix(p + "mlp.down_proj.weight", hidden, c.intermediateSize))
        }
        finalNorm = try vector(names.decoder + "norm.weight", hidden)
        lmHead = try matrix(names.lmHead, c.vocabSize, hidden)
    }

    /// Bytes of weights one decode step reads (cross layers included; the embedding table counts
    /// although a step reads only a row of it, as LlamaWeights counts it).
    var byteCount: Int {
        let vectors =
            [finalNorm]
            + layers.flatMap { l in
                [l.inputNorm, l.postAttentionNorm] + (l.crossAttention.map { [$0.qNorm, $0.kNorm] } ?? [])
            }
        let matrices =
            [embedding, lmHead]
            + layers.flatMap { l -> [WeightMatrix] in
                let attention = l.selfAttention.map { [$0.q, $0.k, $0.v, $0.o] } ?? l.crossAttention.map { [$0.q, $0.k, $0.v, $0.o] } ?? []
                return attention + [l.gate, l.up, l.down]
            }
        return vectors.reduce(0) { $0 + $1.count * 4 } + matrices.reduce(0) { $0 + $1.byteCount }
    }
}
