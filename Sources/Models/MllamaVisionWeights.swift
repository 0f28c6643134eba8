import Foundation
import Kernels
import ModelFormats

/// The tensors of a Llama 3.2 Vision encoder under `prefix` (`vision_model.` or `model.vision_model.`),
/// shapes checked. Matrices and the large aspect-ratio embedding tables stay mapped in their stored dtype.
struct MllamaVisionWeights {
    struct Layer {
        let norm1Weight, norm1Bias: FloatTensor // input_layernorm (hidden)
        let q, k, v, o: WeightMatrix // self_attn.{q,k,v,o}_proj.weight (hidden, hidden), no biases
        let norm2Weight, norm2Bias: FloatTensor // post_attention_layernorm (hidden)
        let fc1: WeightMatrix // mlp.fc1.weight (intermediate, hidden)
        let fc1Bias: FloatTensor
        let fc2: WeightMatrix // mlp.fc2.weight (hidden, intermediate)
        let fc2Bias: FloatTensor
        /// Global layers only: tanh of gate_attn and gate_ffn (1).
        let attentionGate, mlpGate: Float?
    }

    /// patch_embedding.weight (hidden, 3, patch, patch), read as (hidden, 3·patch·patch); no bias.
    let patch: WeightMatrix
    let classEmbedding: FloatTensor // class_embedding (hidden)
    let positions: FloatTensor // gated_positional_embedding.embedding (tileRows, hidden)
    /// tanh of gated_positional_embedding.gate: the tile-position table gets it, the plain one 1 − it.
    let positionGate: Float
    /// gated_positional_embedding.tile_embedding.weight (aspectRatioIds, maxTiles·tileRows·hidden).
    let tilePositions: WeightMatrix
    /// {pre,post}_tile_positional_embedding.embedding.weight (aspectRatioIds, maxTiles·hidden), with the
    /// tanh of their gates.
    let preTile, postTile: WeightMatrix
    let preTileGate, postTileGate: Float
    let preNormWeight, preNormBias: FloatTensor // layernorm_pre (hidden)
    let postNormWeight, postNormBias: FloatTensor // layernorm_post (hidden)
    let local: [Layer] // transformer.layers.N
    let global: [Layer] // global_transformer.layers.N (gated)

    init(checkpoint: any WeightSource, config c: MllamaVisionConfig, prefix p: String) throws {
        let hidden = c.hiddenSize, inner = c.intermediateSize
        func vector(_ name: String, _ size: Int) throws -> FloatTensor { try checkpoint.floatTensor(p + name, shape: [size]) }
        func gate(_ name: String) throws -> Float { tanhf(try checkpoint.scalar(p + name)) }
        func matrix(_ name: String, _ rows: Int, _ columns: Int) throws -> WeightMatrix {
            try checkpoint.weightMatrix(p + name, rows: rows, columns: columns)
        }
        patch = try checkpoint.weightMatrix(p + "patch_embedding.weight", shape: [hidden, c.numChannels, c.patchSize, c.patchSize])
        classEmbedding = try vector("class_embedding", hidden)
        positions = try checkpoint.floatTensor(p + "gated_positional_embedding.embedding", shape: [c.tileRows, hidden])
        positionGate = try gate("gated_positional_embedding.gate")
        tilePositions = try matrix(
            "gated_positional_embedding.tile_embedding.weight", c.aspectRatioIds, c.maxNumTiles * c.tileRows * hidden)
        preTile = try matrix("pre_tile_positional_embedding.embedding.weight", c.aspectRatioIds, c.maxNumTiles * hidden)
        preTileGate = try gate("pre_tile_positional_embedding.gate")
        postTile = try matrix("post_tile_positional_embedding.embedding.weight", c.aspectRatioIds, c.maxNumTiles * hidden)
        postTileGate = try gate("post_tile_positional_embedding.gate")
        preNormWeight = try vector("layernorm_pre.weight", hidden)
        preNormBias = try vector("layernorm_pre.bias", hidden)
        postNormWeight = try vector("layernorm_post.weight", hidden)
        postNormBias = try vector("layernorm_post.bias", hidden)
        func layer(_ l: String, gated: Bool) throws -> Layer {
            Layer(
                norm1Weight: try vector(l + "input_layernorm.weight", hidden), norm1Bias: try vector(l + "input_layernorm.bias", hidden),
                q: try matrix(l + "self_attn.q_proj.weight", hidden, hidden), k: try matrix(l + "self_attn.k_proj.weight", hidden, hidden),
                v: try matrix(l + "self_attn.v_proj.weight", hidden, hidden), o: try matrix(l + "self_attn.o_proj.weight", hidden, hidden),
                norm2Weight: try vector(l + "post_attention_layernorm.weight", hidden),
                norm2Bias: try vector(l + "post_attention_layernorm.bias", hidden),
                fc1: try matrix(l + "mlp.fc1.weight", inner, hidden), fc1Bias: try vector(l + "mlp.fc1.bias", inner),
                fc2: try matrix(l + "mlp.fc2.weight", hidden, inner), fc2Bias: try vector(l + "mlp.fc2.bias", hidden),
                attentionGate: gated ? try gate(l + "gate_attn") : nil, mlpGate: gated ? try gate(l + "gate_ffn") : nil)
        }
        local = try (0..<c.numHiddenLayers).map { try layer("transformer.layers.\($0).", gated: false) }
        global = try (0..<c.numGlobalLayers).map { try layer("global_transformer.layers.\($0).", gated: true) }
    }
}

extension WeightMatrix {
    /// Columns `columns` of row `row` as f32 into `out`: a slice of a wide embedding row (an
    /// aspect-ratio table row holds every tile's embedding side by side).
    func widen(row: Int, columns range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let start = base + (row * columns + range.lowerBound) * element.byteSize
        WeightMatrix(base: start, element: element, rows: 1, columns: range.count).widenRow(0, into: out)
    }
}
