import Foundation
import Kernels
import ModelFormats

/// A Llama-family causal decoder (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM) over
/// memory-mapped weights. All scratch memory is allocated here, once; `forward` allocates nothing.
public final class LlamaModel: @unchecked Sendable {
    public let config: TextModelConfig
    /// Most rows one `forward` may carry (longer prefills are split by the caller).
    public let maxRows: Int
    /// Most rows whose logits one `forward` may return.
    public let maxLogitRows: Int
    public let pool: ComputePool
    /// Values per logit row: the vocabulary for a language-model head, the labels for a classifier's.
    public let outputSize: Int
    let weights: LlamaWeights
    let rope: RotaryEmbedding

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
    let logits: UnsafeMutablePointer<Float> // (logitRows, outputSize)
    /// One embedding row's stored bytes, for lookups read from the file (`WeightSource.lookUp`).
    let lookupRow: UnsafeMutableRawPointer
    /// Reused parallel tasks: the forward pass allocates nothing.
    let linear = LinearTask()
    let gating = SiluMultiplyTask()
    let attention: CausalAttention

    public convenience init(directory: URL, maxRows: Int = 128, maxLogitRows: Int = 64, pool: ComputePool = .shared) throws {
        let checkpoint = try Checkpoint(directory: directory)
        try self.init(
            config: TextModelConfig.load(from: directory), checkpoint: checkpoint,
            maxRows: maxRows, maxLogitRows: maxLogitRows, pool: pool)
        try checkpoint.verifyAllConsumed(ignoring: LlamaWeights.isDerivedBuffer)
    }

    /// A decoder read from a GGUF file (architectures `llama` and `qwen2`), its tensors used where they
    /// lie in the mapping. llama.cpp's converter reorders the rows of a llama model's Q and K
    /// projections so that RoPE rotates neighbouring dimensions; the same rows in the same order
    /// go to the keys and the queries, so attention scores are unchanged, and the model rotates
    /// neighbours instead of un-permuting (and copying) the matrices as transformers does.
    ///
    /// A `rope_freqs.weight` tensor (llama.cpp's converter writes one for llama3-style RoPE scaling,
    /// its per-frequency divisors computed from the checkpoint's `rope_scaling`) scales RoPE as
    /// llama.cpp applies it: each inverse frequency divided by its entry.
    public convenience init(gguf file: GGUFFile, maxRows: Int = 128, maxLogitRows: Int = 64, pool: ComputePool = .shared) throws {
        let config = try TextModelConfig(gguf: file)
        let weights = GGUFWeights(file: file)
        let divisors = try weights.ropeFrequencyDivisors(count: config.headDim / 2)
        try self.init(
            config: config, checkpoint: weights, ropeLayout: config.modelType == "llama" ? .interleaved : .rotateHalf,
            ropeScaling: divisors.map { .frequencyDivisors($0) }, maxRows: maxRows, maxLogitRows: maxLogitRows, pool: pool)
        try weights.verifyAllConsumed()
    }

    /// A decoder whose tensors sit under `names` in `checkpoint` (which may hold other models'
    /// tensors too, as a LLaVA checkpoint does: the caller verifies that all were consumed).
    /// `ropeLayout`: which dimensions of a head RoPE rotates together (see `init(gguf:)`);
    /// `ropeScaling`: RoPE's scaling when the checkpoint gives it outside `config` (a GGUF tensor).
    public init(
        config: TextModelConfig, checkpoint: any WeightSource, names: LlamaTensorNames = .causalLM,
        ropeLayout: RotaryEmbedding.Layout = .rotateHalf, ropeScaling: RotaryEmbedding.Scaling? = nil, maxRows: Int = 128,
        maxLogitRows: Int = 64, pool: ComputePool = .shared
    ) throws {
        let directory = checkpoint.location
        // Where the configuration came from: a directory's config.json, or a GGUF file's metadata.
        let source = checkpoint is Checkpoint ? directory.appendingPathComponent("config.json").path : directory.path
        guard config.hiddenAct == "silu" else {
            throw ModelError(.unsupportedConfiguration, "\(source): hidden_act \"\(config.hiddenAct)\" is not supported (only silu)")
        }
        guard config.numAttentionHeads % config.numKeyValueHeads == 0 else {
            throw ModelError(
                .unsupportedConfiguration,
                "\(source): num_attention_heads \(config.numAttentionHeads) is not a multiple of num_key_value_heads \(config.numKeyValueHeads)"
            )
        }
        self.config = config
        self.rope = RotaryEmbedding(
            headDim: config.headDim, base: config.ropeTheta,
            scaling: try ropeScaling ?? Self.ropeScaling(config, directory: directory), layout: ropeLayout)
        self.weights = try LlamaWeights(checkpoint: checkpoint, config: config, names: names)
        self.maxRows = maxRows
        self.maxLogitRows = maxLogitRows
        self.pool = pool
        let outputSize = names.headRows ?? config.vocabSize
        self.outputSize = outputSize
        let qWidth = config.numAttentionHeads * config.headDim, kvWidth = config.numKeyValueHeads * config.headDim
        hidden = .allocate(capacity: maxRows * config.hiddenSize)
        normed = .allocate(capacity: maxRows * config.hiddenSize)
        query = .allocate(capacity: maxRows * qWidth)
        key = .allocate(capacity: maxRows * kvWidth)
        value = .allocate(capacity: maxRows * kvWidth)
        attended = .allocate(capacity: maxRows * qWidth)
        projected = .allocate(capacity: maxRows * config.hiddenSize)
        gate = .allocate(capacity: maxRows * config.intermediateSize)
        up = .allocate(capacity: maxRows * config.intermediateSize)
        cosines = .allocate(capacity: maxRows * config.headDim / 2)
        sines = .allocate(capacity: maxRows * config.headDim / 2)
        finalRows = .allocate(capacity: maxLogitRows * config.hiddenSize)
        logits = .allocate(capacity: maxLogitRows * outputSize)
        lookupRow = .allocate(byteCount: weights.embedding.rowBytes, alignment: 64)
        attention = CausalAttention(
            heads: config.numAttentionHeads, kvHeads: config.numKeyValueHeads,
            headDim: config.headDim, slidingWindow: config.slidingWindow, threads: pool.threads)
    }

    deinit {
        for buffer in [hidden, normed, query, key, value, attended, projected, gate, up, cosines, sines, finalRows, logits] {
            buffer.deallocate()
        }
        lookupRow.deallocate()
    }

    static func ropeScaling(_ config: TextModelConfig, directory: URL) throws -> RotaryEmbedding.Scaling {
        guard let scaling = config.ropeScaling else { return .none }
        switch scaling.ropeType {
        case "default": return .none
        case "linear": return .linear(factor: scaling.factor)
        case "llama3":
            guard let low = scaling.lowFreqFactor, let high = scaling.highFreqFactor,
                let original = scaling.originalMaxPositionEmbeddings
            else {
                throw ModelError(
                    .unsupportedConfiguration,
                    "\(directory.path)/config.json: llama3 rope_scaling needs low_freq_factor, high_freq_factor and original_max_position_embeddings"
                )
            }
            return .llama3(factor: scaling.factor, lowFrequencyFactor: low, highFrequencyFactor: high, originalContext: original)
        case "yarn":
            guard let original = scaling.originalMaxPositionEmbeddings else {
                throw ModelError(
                    .unsupportedConfiguration, "\(directory.path): yarn rope_scaling needs original_max_position_embeddings")
            }
            return .yarn(
                factor: scaling.factor, originalContext: original, betaFast: scaling.betaFast ?? 32, betaSlow: scaling.betaSlow ?? 1,
                attentionFactor: scaling.attentionFactor)
        default:
            throw ModelError(
                .unsupportedConfiguration,
                "\(directory.path)/config.json: rope_scaling type \"\(scaling.ropeType)\" is not supported (default, linear, llama3, yarn)")
        }
    }

    /// A KV cache shaped for this model.
    public func makeCache(capacityTokens: Int, type: KVCacheType = .f32) -> PagedKVCache {
        PagedKVCache(
            layers: config.numHiddenLayers, kvHeads: config.numKeyValueHeads, headDim: config.headDim,
            capacityTokens: capacityTokens, type: type)
    }

    public var vocabularySize: Int { config.vocabSize }

    /// Bytes of weights the decoder reads, counting a tied embedding once.
    public var weightBytes: Int { weights.byteCount }

    /// Runs `batch` through the decoder, storing every row's keys and values in `cache` at the row's
    /// position (the caller reserved those slots with `cache.append`). Returns the logits of
    /// `batch.logitRows`, (logitRows, outputSize), valid until the next call.
    public func forward(_ batch: ForwardBatch, cache: PagedKVCache) throws -> UnsafeBufferPointer<Float> {
        let rows = batch.count
        precondition(rows <= maxRows && batch.logitRows.count <= maxLogitRows, "batch larger than the model's scratch")
        let c = config
        let hiddenSize = c.hiddenSize, headDim = c.headDim, heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim, half = headDim / 2

        if batch.embeddingWidth != 0 && batch.embeddingWidth != hiddenSize {
            throw ModelError(
                .unsupportedConfiguration, "input embeddings are \(batch.embeddingWidth) wide; the model's hidden size is \(hiddenSize)")
        }
        for r in 0..<rows {
            if let start = batch.embeddingStart(row: r) {
                // A row given as an embedding (e.g. an image feature) replaces the token lookup.
                batch.embeddingValues.withUnsafeBufferPointer { values in
                    (hidden + r * hiddenSize).update(from: values.baseAddress! + start, count: hiddenSize)
                }
            } else {
                let token = Int(batch.tokens[r])
                guard token >= 0 && token < c.vocabSize else {
                    throw ModelError(.tokenOutOfRange, "token id \(token) is outside the model's vocabulary (0..<\(c.vocabSize))")
                }
                try weights.checkpoint.lookUp(row: token, of: weights.embedding, into: hidden + r * hiddenSize, scratch: lookupRow)
            }
            rope.angles(position: Int(batch.positions[r]), cos: cosines + r * half, sin: sines + r * half)
        }

        for (l, layer) in weights.layers.enumerated() {
            // Attention block.
            rmsNorm(hidden, weight: layer.inputNorm.pointer, rows: rows, dim: hiddenSize, eps: c.rmsNormEps, into: normed)
            linear(
                normed, rows: rows, LinearOutput(weight: layer.q, bias: layer.qBias?.pointer, into: query),
                LinearOutput(weight: layer.k, bias: layer.kBias?.pointer, into: key),
                LinearOutput(weight: layer.v, bias: layer.vBias?.pointer, into: value), pool: pool)
            for r in 0..<rows {
                rope.apply(query + r * qWidth, heads: heads, cos: cosines + r * half, sin: sines + r * half)
                rope.apply(key + r * kvWidth, heads: kvHeads, cos: cosines + r * half, sin: sines + r * half)
                cache.store(
                    keys: key + r * kvWidth, values: value + r * kvWidth, sequence: batch.sequences[r], position: Int(batch.positions[r]),
                    layer: l)
            }
            attention(layer: l, batch: batch, cache: cache, query: query, into: attended, pool: pool)
            linear(attended, rows: rows, weight: layer.o, bias: layer.oBias?.pointer, into: projected, pool: pool)
            add(projected, into: hidden, count: rows * hiddenSize)

            // MLP block (SwiGLU).
            rmsNorm(hidden, weight: layer.postAttentionNorm.pointer, rows: rows, dim: hiddenSize, eps: c.rmsNormEps, into: normed)
            linear(
                normed, rows: rows, LinearOutput(weight: layer.gate, bias: layer.gateBias?.pointer, into: gate),
                LinearOutput(weight: layer.up, bias: layer.upBias?.pointer, into: up), pool: pool)
            gating(gate, up, count: rows * c.intermediateSize, pool: pool)
            linear(gate, rows: rows, weight: layer.down, bias: layer.downBias?.pointer, into: projected, pool: pool)
            add(projected, into: hidden, count: rows * hiddenSize)
        }

        // Final norm and the vocabulary projection, only for the rows whose logits are wanted.
        let logitRows = batch.logitRows.count
        for (i, row) in batch.logitRows.enumerated() {
            rmsNorm(
                hidden + Int(row) * hiddenSize, weight: weights.finalNorm.pointer, rows: 1, dim: hiddenSize, eps: c.rmsNormEps,
                into: finalRows + i * hiddenSize)
        }
        linear(finalRows, rows: logitRows, weight: weights.lmHead, into: logits, pool: pool)
        return UnsafeBufferPointer(start: logits, count: logitRows * outputSize)
    }
}
