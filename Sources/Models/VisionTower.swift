import Foundation
import Kernels
import ModelFormats

/// A CLIP or SigLIP vision transformer, as LLaVA uses it: it returns hidden states of chosen
/// layers, not the pooled output (so `post_layernorm` and SigLIP's pooling head are never run).
/// Scratch memory is allocated once; one image is encoded at a time.
public final class VisionTower: @unchecked Sendable {
    public let config: VisionModelConfig
    let weights: VisionWeights
    let activation: Activation
    let pool: ComputePool
    private let lock = NSLock()

    // Scratch, rows = config.positionCount.
    let hidden: UnsafeMutablePointer<Float> // (rows, hidden) residual stream
    let normed: UnsafeMutablePointer<Float> // (rows, hidden)
    let query: UnsafeMutablePointer<Float> // (rows, hidden)
    let key: UnsafeMutablePointer<Float> // (rows, hidden)
    let value: UnsafeMutablePointer<Float> // (rows, hidden)
    let attention: UnsafeMutablePointer<Float> // (rows, hidden)
    let projected: UnsafeMutablePointer<Float> // (rows, hidden)
    let inner: UnsafeMutablePointer<Float> // (rows, intermediate)
    let patches: UnsafeMutablePointer<Float> // (patches, 3·patch·patch)
    let attend: BidirectionalAttention

    init(config: VisionModelConfig, checkpoint: Checkpoint, prefix: String, pool: ComputePool) throws {
        guard let activation = Activation(rawValue: config.hiddenAct) else {
            throw ModelError(
                .unsupportedConfiguration,
                "\(checkpoint.directory.path)/config.json: vision hidden_act \"\(config.hiddenAct)\" is not supported (gelu, gelu_pytorch_tanh, gelu_new, quick_gelu, silu)"
            )
        }
        self.config = config
        self.activation = activation
        self.pool = pool
        weights = try VisionWeights(checkpoint: checkpoint, config: config, prefix: prefix)
        let rows = config.positionCount, width = config.hiddenSize
        hidden = .allocate(capacity: rows * width)
        normed = .allocate(capacity: rows * width)
        query = .allocate(capacity: rows * width)
        key = .allocate(capacity: rows * width)
        value = .allocate(capacity: rows * width)
        attention = .allocate(capacity: rows * width)
        projected = .allocate(capacity: rows * width)
        inner = .allocate(capacity: rows * config.intermediateSize)
        patches = .allocate(capacity: config.patchCount * config.numChannels * config.patchSize * config.patchSize)
        attend = BidirectionalAttention(rows: rows, headDim: config.headDim)
    }

    deinit {
        for buffer in [hidden, normed, query, key, value, attention, projected, inner, patches] { buffer.deallocate() }
    }

    /// Runs the tower on `pixels` (3, imageSize, imageSize) and writes the hidden states `states`
    /// (0 = embeddings entering the encoder, i = output of layer i), side by side, into `out`:
    /// (rows - skipRows, hidden · states.count), dropping the first `skipRows` rows of each.
    /// Layers past the deepest requested state are not run.
    func encode(_ pixels: UnsafePointer<Float>, states: [Int], skipRows: Int, into out: UnsafeMutablePointer<Float>) {
        lock.lock()
        defer { lock.unlock() }
        let c = config, width = c.hiddenSize, rows = c.positionCount
        let outWidth = width * states.count
        func emit(_ state: Int) {
            for (j, wanted) in states.enumerated() where wanted == state {
                for r in skipRows..<rows {
                    (out + (r - skipRows) * outWidth + j * width).update(from: hidden + r * width, count: width)
                }
            }
        }

        embed(pixels)
        emit(0)
        for (i, layer) in weights.layers.prefix(states.max()!).enumerated() {
            // Self-attention block (pre-norm, bidirectional).
            layerNorm(
                hidden, weight: layer.norm1Weight.pointer, bias: layer.norm1Bias.pointer, rows: rows, dim: width, eps: c.layerNormEps,
                into: normed)
            linear(normed, rows: rows, weight: layer.q, bias: layer.qBias.pointer, into: query, pool: pool)
            linear(normed, rows: rows, weight: layer.k, bias: layer.kBias.pointer, into: key, pool: pool)
            linear(normed, rows: rows, weight: layer.v, bias: layer.vBias.pointer, into: value, pool: pool)
            attend(query: query, key: key, value: value, width: width, into: attention, pool: pool)
            linear(attention, rows: rows, weight: layer.out, bias: layer.outBias.pointer, into: projected, pool: pool)
            add(projected, into: hidden, count: rows * width)
            // MLP block.
            layerNorm(
                hidden, weight: layer.norm2Weight.pointer, bias: layer.norm2Bias.pointer, rows: rows, dim: width, eps: c.layerNormEps,
                into: normed)
            linear(normed, rows: rows, weight: layer.fc1, bias: layer.fc1Bias.pointer, into: inner, pool: pool)
            activation.apply(inner, count: rows * c.intermediateSize)
            linear(inner, rows: rows, weight: layer.fc2, bias: layer.fc2Bias.pointer, into: projected, pool: pool)
            add(projected, into: hidden, count: rows * width)
            emit(i + 1)
        }
    }

    /// Patch embedding (the stride-`patch` convolution as one matrix product), class token,
    /// position embedding and CLIP's pre-norm, into `hidden`.
    private func embed(_ pixels: UnsafePointer<Float>) {
        let c = config, width = c.hiddenSize, side = c.imageSize, p = c.patchSize, grid = c.patchesPerSide
        let patchWidth = c.numChannels * p * p
        // Row-major over the patch grid, each patch flattened as (channel, row, column) like the kernel.
        for gy in 0..<grid {
            for gx in 0..<grid {
                var to = patches + (gy * grid + gx) * patchWidth
                for channel in 0..<c.numChannels {
                    for y in 0..<p {
                        to.update(from: pixels + (channel * side + gy * p + y) * side + gx * p, count: p)
                        to += p
                    }
                }
            }
        }
        let first = c.hasClassToken ? 1 : 0
        linear(
            patches, rows: c.patchCount, weight: weights.patch, bias: weights.patchBias?.pointer, into: hidden + first * width, pool: pool)
        if let classEmbedding = weights.classEmbedding { hidden.update(from: classEmbedding.pointer, count: width) }
        add(weights.positions.pointer, into: hidden, count: c.positionCount * width)
        if let weight = weights.preNormWeight, let bias = weights.preNormBias {
            layerNorm(
                hidden, weight: weight.pointer, bias: bias.pointer, rows: c.positionCount, dim: width, eps: c.layerNormEps, into: hidden)
        }
    }
}
