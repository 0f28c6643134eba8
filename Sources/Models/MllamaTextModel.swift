import Foundation
import Kernels
import ModelFormats

/// The Llama 3.2 Vision decoder (`MllamaTextModel` + `lm_head`): a Llama 3 decoder whose layers in
/// `cross_attention_layers` attend to an image instead of to the text. Self-attention layers keep
/// their keys and values in a `PagedKVCache` (forked and trimmed like any Llama's); cross-attention
/// layers read an image's precomputed keys and values (`MllamaImageStates`), shared by every sequence
/// that shows the image. All scratch memory is allocated here, once; `forward` allocates nothing.
public final class MllamaTextModel: @unchecked Sendable {
    public let config: MllamaConfig
    public let maxRows: Int
    public let maxLogitRows: Int
    public let pool: ComputePool
    let weights: MllamaTextWeights
    let rope: RotaryEmbedding
    let headDim: Int
    /// Layers with a self-attention KV cache.
    let cacheLayers: Int

    // Scratch, shapes for `maxRows` rows.
    let hidden: UnsafeMutablePointer<Float> // (rows, hidden) residual stream
    let normed: UnsafeMutablePointer<Float> // (rows, hidden)
    let query: UnsafeMutablePointer<Float> // (rows, heads·headDim)
    let key: UnsafeMutablePointer<Float> // (rows, kvHeads·headDim)
    let value: UnsafeMutablePointer<Float> // (rows, kvHeads·headDim)
    let attended: UnsafeMutablePointer<Float> // (rows, heads·headDim)
    let projected: UnsafeMutablePointer<Float> // (rows, hidden) output of o_proj / down_proj
    let gate: UnsafeMutablePointer<Float> // (rows, intermediate)
    let up: UnsafeMutablePointer<Float> // (rows, intermediate)
    let cosines: UnsafeMutablePointer<Float> // (rows, headDim/2)
    let sines: UnsafeMutablePointer<Float> // (rows, headDim/2)
    let finalRows: UnsafeMutablePointer<Float> // (logitRows, hidden)
    let logits: UnsafeMutablePointer<Float> // (logitRows, vocab)
    /// One embedding row's stored bytes, for lookups read from the file (`WeightSource.lookUp`).
    let lookupRow: UnsafeMutableRawPointer
    let positions: UnsafeMutablePointer<Int32> // (rows) the batch's positions, for the cross-attention task
    let linear = LinearTask()
    let gating = SiluMultiplyTask()
    let attention: CausalAttention
    let crossAttention: MllamaCrossAttention

    init(
        config: MllamaConfig, checkpoint: any WeightSource, directory: URL, names: LlamaTensorNames, maxRows: Int, maxLogitRows: Int,
        pool: ComputePool
    ) throws {
        let c = config.textConfig
        guard c.hiddenAct == "silu" else {
            throw ModelError(
                .unsupportedConfiguration, "\(directory.path)/config.json: text hidden_act \"\(c.hiddenAct)\" is not supported (only silu)")
        }
        self.config = config
        headDim = c.hiddenSize / c.numAttentionHeads
        rope = RotaryEmbedding(headDim: headDim, base: c.ropeTheta, scaling: try LlamaModel.ropeScaling(c, directory: directory))
        weights = try MllamaTextWeights(checkpoint: checkpoint, config: config, names: names)
        cacheLayers = c.numHiddenLayers - config.crossAttentionLayers.count
        self.maxRows = maxRows
        self.maxLogitRows = maxLogitRows
        self.pool = pool
        let qWidth = c.numAttentionHeads * headDim, kvWidth = c.numKeyValueHeads * headDim
        hidden = .allocate(capacity: maxRows * c.hiddenSize)
        normed = .allocate(capacity: maxRows * c.hiddenSize)
        query = .allocate(capacity: maxRows * qWidth)
        key = .allocate(capacity: maxRows * kvWidth)
        value = .allocate(capacity: maxRows * kvWidth)
        attended = .allocate(capacity: maxRows * qWidth)
        projected = .allocate(capacity: maxRows * c.hiddenSize)
        gate = .allocate(capacity: maxRows * c.intermediateSize)
        up = .allocate(capacity: maxRows * c.intermediateSize)
        cosines = .allocate(capacity: maxRows * headDim / 2)
        sines = .allocate(capacity: maxRows * headDim / 2)
        finalRows = .allocate(capacity: maxLogitRows * c.hiddenSize)
        logits = .allocate(capacity: maxLogitRows * c.vocabSize)
        positions = .allocate(capacity: maxRows)
        lookupRow = .allocate(byteCount: weights.embedding.rowBytes, alignment: 64)
        attention = CausalAttention(
            heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: headDim,
            slidingWindow: nil, threads: pool.threads)
        crossAttention = MllamaCrossAttention(
            heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: headDim,
            threads: pool.threads)
    }

    deinit {
        for buffer in [hidden, normed, query, key, value, attended, projected, gate, up, cosines, sines, finalRows, logits] {
            buffer.deallocate()
        }
        positions.deallocate()
        lookupRow.deallocate()
    }

    /// A KV cache for the self-attention layers (cross-attention layers keep none).
    public func makeCache(capacityTokens: Int, type: KVCacheType = .f32) -> PagedKVCache {
        PagedKVCache(
            layers: cacheLayers, kvHeads: config.textConfig.numKeyValueHeads, headDim: headDim, capacityTokens: capacityTokens,
            type: type)
    }

    /// `lm_head`'s vocabulary (the embedding table has 8 more rows, one of them `<|image|>`).
    public var vocabularySize: Int { config.textConfig.vocabSize }

    /// Bytes of weights the decoder reads.
    public var weightBytes: Int { weights.byteCount }

    /// Runs `batch` (token rows only) through the decoder, storing self-attention keys and values in
    /// `cache` at each row's position (slots the caller reserved with `cache.append`); the
    /// cross-attention layers see `image`, or are skipped when it is nil (a text-only prompt, as
    /// transformers does). Every row of a batch shares one image context: a prompt, its candidates or
    /// its judge calls. Returns the logits of `batch.logitRows`, (logitRows, vocab), valid until the next call.
    public func forward(_ batch: ForwardBatch, cache: PagedKVCache, image: MllamaImageContext?) throws -> UnsafeBufferPointer<Float> {
        let rows = batch.count
        precondition(rows <= maxRows && batch.logitRows.count <= maxLogitRows, "batch larger than the model's scratch")
        let c = config.textConfig
        let hiddenSize = c.hiddenSize, heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim, half = headDim / 2
        let embeddingRows = c.vocabSize + MllamaConfig.extraEmbeddingRows
        if let image, image.states.owner != ObjectIdentifier(self) {
            throw ModelError(
                .unsupportedConfiguration, "the image states were computed by another model; compute them with this model's imageStates")
        }

        for r in 0..<rows {
            guard batch.embeddingStart(row: r) == nil else {
                throw ModelError(
                    .unsupportedConfiguration,
                    "Llama 3.2 Vision takes token rows only (images enter through cross-attention, not as embedding rows)")
            }
            let token = Int(batch.tokens[r])
            guard token >= 0 && token < embeddingRows else {
                throw ModelError(.tokenOutOfRange, "token id \(token) is outside the model's embedding table (0..<\(embeddingRows))")
            }
            try weights.checkpoint.lookUp(row: token, of: weights.embedding, into: hidden + r * hiddenSize, scratch: lookupRow)
            rope.angles(position: Int(batch.positions[r]), cos: cosines + r * half, sin: sines + r * half)
            positions[r] = batch.positions[r]
        }

        for layer in weights.layers {
            if let cross = layer.crossAttention {
                guard let image else { continue }
                crossAttentionBlock(cross, layer: layer, image: image, rows: rows)
                continue
            }
            let selfAttention = layer.selfAttention!
            rmsNorm(hidden, weight: layer.inputNorm.pointer, rows: rows, dim: hiddenSize, eps: c.rmsNormEps, into: normed)
            linear(
                normed, rows: rows, LinearOutput(weight: selfAttention.q, into: query), LinearOutput(weight: selfAttention.k, into: key),
                LinearOutput(weight: selfAttention.v, into: value), pool: pool)
            for r in 0..<rows {
                rope.apply(query + r * qWidth, heads: heads, cos: cosines + r * half, sin: sines + r * half)
                rope.apply(key + r * kvWidth, heads: kvHeads, cos: cosines + r * half, sin: sines + r * half)
                cache.store(
                    keys: key + r * kvWidth, values: value + r * kvWidth, sequence: batch.sequences[r], position: Int(batch.positions[r]),
                    layer: selfAttention.cache)
            }
            attention(layer: selfAttention.cache, batch: batch, cache: cache, query: query, into: attended, pool: pool)
            linear(attended, rows: rows, weight: selfAttention.o, into: projected, pool: pool)
            add(projected, into: hidden, count: rows * hiddenSize)
            mlp(layer, rows: rows)
            add(projected, into: hidden, count: rows * hiddenSize)
        }

        let logitRows = batch.logitRows.count
        for (i, row) in batch.logitRows.enumerated() {
            rmsNorm(
                hidden + Int(row) * hiddenSize, weight: weights.finalNorm.pointer, rows: 1, dim: hiddenSize, eps: c.rmsNormEps,
                into: finalRows + i * hiddenSize)
        }
        linear(finalRows, rows: logitRows, weight: weights.lmHead, into: logits, pool: pool)
        return UnsafeBufferPointer(start: logits, count: logitRows * c.vocabSize)
    }

    /// `MllamaCrossAttentionDecoderLayer`: q_proj, q_norm per head, attention over the image,
    /// o_proj, tanh-gated residual; then the MLP, tanh-gated, for rows at or after the image token only.
    private func crossAttentionBlock(
        _ cross: MllamaTextWeights.CrossAttention, layer: MllamaTextWeights.Layer,
        image: MllamaImageContext, rows: Int
    ) {
        let c = config.textConfig, hiddenSize = c.hiddenSize
        rmsNorm(hidden, weight: layer.inputNorm.pointer, rows: rows, dim: hiddenSize, eps: c.rmsNormEps, into: normed)
        linear(normed, rows: rows, weight: cross.q, into: query, pool: pool)
        rmsNorm(query, weight: cross.qNorm.pointer, rows: rows * c.numAttentionHeads, dim: headDim, eps: c.rmsNormEps, into: query)
        crossAttention(layer: cross.index, context: image, positions: positions, rows: rows, query: query, into: attended, pool: pool)
        linear(attended, rows: rows, weight: cross.o, into: projected, pool: pool)
        for i in 0..<(rows * hiddenSize) { hidden[i] += cross.attentionGate * projected[i] }
        mlp(layer, rows: rows)
        for r in 0..<rows where Int(positions[r]) >= image.imagePosition {
            let h = hidden + r * hiddenSize, p = projected + r * hiddenSize
            for i in 0..<hiddenSize { h[i] += cross.mlpGate * p[i] }
        }
    }

    /// post_attention_layernorm and the SwiGLU MLP of `layer`, into `projected`.
    private func mlp(_ layer: MllamaTextWeights.Layer, rows: Int) {
        let c = config.textConfig
        rmsNorm(hidden, weight: layer.postAttentionNorm.pointer, rows: rows, dim: c.hiddenSize, eps: c.rmsNormEps, into: normed)
        linear(normed, rows: rows, LinearOutput(weight: layer.gate, into: gate), LinearOutput(weight: layer.up, into: up), pool: pool)
        gating(gate, up, count: rows * c.intermediateSize, pool: pool)
        linear(gate, rows: rows, weight: layer.down, into: projected, pool: pool)
    }

    /// Computes the keys and values of every cross-attention layer from projected vision states
    /// (visionRows, hidden).
    func imageStates(_ states: UnsafePointer<Float>, visionRows: Int, tileCount: Int, tileRows: Int) -> MllamaImageStates {
        let c = config.textConfig, kvHeads = c.numKeyValueHeads, kvWidth = kvHeads * headDim
        let image = MllamaImageStates(
            owner: ObjectIdentifier(self), layers: config.crossAttentionLayers.count, kvHeads: kvHeads, headDim: headDim,
            rows: visionRows, tileCount: tileCount, tileRows: tileRows)
        let projectedKeys = UnsafeMutablePointer<Float>.allocate(capacity: visionRows * kvWidth)
        let projectedValues = UnsafeMutablePointer<Float>.allocate(capacity: visionRows * kvWidth)
        defer { projectedKeys.deallocate(); projectedValues.deallocate() }
        for layer in weights.layers {
            guard let cross = layer.crossAttention else { continue }
            Kernels.linear(states, rows: visionRows, weight: cross.k, into: projectedKeys, pool: pool)
            Kernels.linear(states, rows: visionRows, weight: cross.v, into: projectedValues, pool: pool)
            rmsNorm(
                projectedKeys, weight: cross.kNorm.pointer, rows: visionRows * kvHeads, dim: headDim, eps: c.rmsNormEps, into: projectedKeys
            )
            // (rows, kvHeads, headDim) → (kvHeads, rows, headDim).
            for g in 0..<kvHeads {
                let keys = image.keyBase(layer: cross.index, head: g), values = image.valueBase(layer: cross.index, head: g)
                for r in 0..<visionRows {
                    (keys + r * headDim).update(from: projectedKeys + r * kvWidth + g * headDim, count: headDim)
                    (values + r * headDim).update(from: projectedValues + r * kvWidth + g * headDim, count: headDim)
                }
            }
        }
        return image
    }
}
