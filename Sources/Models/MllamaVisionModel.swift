import Foundation
import Kernels
import ModelFormats
import Vision

/// The Llama 3.2 Vision encoder (`MllamaVisionModel`): every tile of an image — padding tiles too —
/// is patch-embedded with a class token and gated position / tile-position embeddings, padded to a
/// multiple of 8 rows, and run through a local encoder and then a gated global encoder, both over all
/// tiles' rows at once. The output row of each tile position is the global encoder's state followed by
/// the chosen local layers' states, interleaved feature by feature (transformers stacks them on a last
/// axis): (maxTiles · tileRows, visionOutputDim).
///
/// Runs once per image, not per token: its scratch (a few hundred MB at Llama 3.2 Vision's size) is
/// allocated per call and freed, so an idle worker does not hold it.
public final class MllamaVisionModel: @unchecked Sendable {
    public let config: MllamaVisionConfig
    let weights: MllamaVisionWeights
    let activation: Activation
    let pool: ComputePool
    private let lock = NSLock()

    init(config: MllamaVisionConfig, checkpoint: any WeightSource, directory: URL, prefix: String, pool: ComputePool) throws {
        guard let activation = Activation(rawValue: config.hiddenAct) else {
            throw ModelError(
                .unsupportedConfiguration,
                "\(directory.path)/config.json: vision hidden_act \"\(config.hiddenAct)\" is not supported (gelu, gelu_pytorch_tanh, gelu_new, quick_gelu, silu)"
            )
        }
        self.config = config
        self.activation = activation
        self.pool = pool
        weights = try MllamaVisionWeights(checkpoint: checkpoint, config: config, prefix: prefix)
    }

    /// Rows of the output: every tile's class token and patches, padding tiles included.
    public var outputRows: Int { config.maxNumTiles * config.tileRows }

    /// Encodes a tiled image into `out`, (outputRows, visionOutputDim).
    func encode(_ image: MllamaTiledImage, into out: UnsafeMutablePointer<Float>) throws {
        let c = config
        guard image.maxTiles == c.maxNumTiles && image.tileSize == c.imageSize else {
            throw ModelError(
                .unsupportedConfiguration,
                "the image has \(image.maxTiles) tiles of \(image.tileSize) px; the vision model takes \(c.maxNumTiles) of \(c.imageSize) px (do the processor's max_image_tiles and size match vision_config's max_num_tiles and image_size?)"
            )
        }
        guard image.aspectRatioId >= 1 && image.aspectRatioId < c.aspectRatioIds else {
            throw ModelError(
                .unsupportedConfiguration,
                "aspect ratio id \(image.aspectRatioId) is outside the model's \(c.aspectRatioIds - 1) supported aspect ratios")
        }
        lock.lock()
        defer { lock.unlock() }
        let scratch = Scratch(config: c)
        defer { scratch.deallocate() }
        image.values.withUnsafeBufferPointer { embed($0.baseAddress!, aspectRatioId: image.aspectRatioId, scratch) }

        let tiles = c.maxNumTiles, real = c.tileRows, padded = c.paddedTileRows, width = c.hiddenSize
        let outWidth = c.visionOutputDim, layers = c.intermediateLayersIndices.count
        // A row is masked when it pads a tile or lies in a padding tile (see `attend`).
        for r in 0..<(tiles * padded) { scratch.masked[r] = r / padded >= image.tileCount || r % padded >= real }

        for (i, layer) in weights.local.enumerated() {
            run(layer, scratch)
            // Chosen layers land at columns width + d·layers + k (torch.stack on a last axis, then flattened).
            for (k, index) in c.intermediateLayersIndices.enumerated() where index == i {
                for t in 0..<tiles {
                    for r in 0..<real {
                        let from = scratch.hidden + (t * padded + r) * width, to = out + (t * real + r) * outWidth + width + k
                        for d in 0..<width { to[d * layers] = from[d] }
                    }
                }
            }
        }
        layerNorm(
            scratch.hidden, weight: weights.postNormWeight.pointer, bias: weights.postNormBias.pointer,
            rows: tiles * padded, dim: width, eps: 1e-5, into: scratch.hidden)
        addTileEmbedding(weights.postTile, gate: weights.postTileGate, aspectRatioId: image.aspectRatioId, rowsPerTile: padded, scratch)
        for layer in weights.global { run(layer, scratch) }
        for t in 0..<tiles {
            for r in 0..<real {
                (out + (t * real + r) * outWidth).update(from: scratch.hidden + (t * padded + r) * width, count: width)
            }
        }
    }

    /// Patch embedding (the stride-`patch` convolution as one matrix product), pre-tile embedding,
    /// class token, gated position and tile-position embeddings, `layernorm_pre`; padding rows zero.
    private func embed(_ pixels: UnsafePointer<Float>, aspectRatioId id: Int, _ s: Scratch) {
        let c = config, width = c.hiddenSize, side = c.imageSize, p = c.patchSize, grid = c.patchesPerSide
        let tiles = c.maxNumTiles, real = c.tileRows, padded = c.paddedTileRows, patches = grid * grid
        let patchWidth = 3 * p * p
        // Row-major over each tile's patch grid, each patch flattened as (channel, row, column) like the kernel.
        for t in 0..<tiles {
            let tile = pixels + t * 3 * side * side
            for gy in 0..<grid {
                for gx in 0..<grid {
                    var to = s.patches + (t * patches + gy * grid + gx) * patchWidth
                    for channel in 0..<3 {
                        for y in 0..<p {
                            to.update(from: tile + (channel * side + gy * p + y) * side + gx * p, count: p)
                            to += p
                        }
                    }
                }
            }
        }
        linear(s.patches, rows: tiles * patches, weight: weights.patch, into: s.inner, pool: pool)
        s.hidden.initialize(repeating: 0, count: tiles * padded * width)
        for t in 0..<tiles {
            let rows = s.hidden + t * padded * width
            rows.update(from: weights.classEmbedding.pointer, count: width)
            (rows + width).update(from: s.inner + t * patches * width, count: patches * width)
        }
        // The pre-tile embedding reaches the patches only (the class token is prepended after it).
        weights.preTile.widen(row: id, columns: 0..<(tiles * width), into: s.embedding)
        for t in 0..<tiles {
            for r in 1..<real {
                let row = s.hidden + (t * padded + r) * width, e = s.embedding + t * width
                for d in 0..<width { row[d] += e[d] * weights.preTileGate }
            }
        }
        let gate = weights.positionGate
        for t in 0..<tiles {
            weights.tilePositions.widen(row: id, columns: (t * real * width)..<((t + 1) * real * width), into: s.embedding)
            for r in 0..<real {
                let row = s.hidden + (t * padded + r) * width
                let position = weights.positions.pointer + r * width, tile = s.embedding + r * width
                for d in 0..<width {
                    row[d] += (1 - gate) * position[d]
                    row[d] += gate * tile[d]
                }
            }
            layerNorm(
                s.hidden + t * padded * width, weight: weights.preNormWeight.pointer, bias: weights.preNormBias.pointer,
                rows: real, dim: width, eps: 1e-5, into: s.hidden + t * padded * width)
        }
    }

    /// Adds tile t's slice of an aspect-ratio embedding row, times its gate, to every row of tile t.
    private func addTileEmbedding(_ table: WeightMatrix, gate: Float, aspectRatioId id: Int, rowsPerTile: Int, _ s: Scratch) {
        let width = config.hiddenSize
        table.widen(row: id, columns: 0..<(config.maxNumTiles * width), into: s.embedding)
        for t in 0..<config.maxNumTiles {
            for r in 0..<rowsPerTile {
                let row = s.hidden + (t * rowsPerTile + r) * width, e = s.embedding + t * width
                for d in 0..<width { row[d] += e[d] * gate }
            }
        }
    }

    /// One encoder layer (pre-norm; a global layer scales both branches by its tanh gates).
    private func run(_ layer: MllamaVisionWeights.Layer, _ s: Scratch) {
        let c = config, rows = c.maxNumTiles * c.paddedTileRows, width = c.hiddenSize
        layerNorm(
            s.hidden, weight: layer.norm1Weight.pointer, bias: layer.norm1Bias.pointer, rows: rows, dim: width, eps: c.normEps,
            into: s.normed)
        linear(s.normed, rows: rows, weight: layer.q, into: s.query, pool: pool)
        linear(s.normed, rows: rows, weight: layer.k, into: s.key, pool: pool)
        linear(s.normed, rows: rows, weight: layer.v, into: s.value, pool: pool)
        attend(s)
        linear(s.attended, rows: rows, weight: layer.o, into: s.projected, pool: pool)
        addGated(s.projected, gate: layer.attentionGate, into: s.hidden, count: rows * width)
        layerNorm(
            s.hidden, weight: layer.norm2Weight.pointer, bias: layer.norm2Bias.pointer, rows: rows, dim: width, eps: c.normEps,
            into: s.normed)
        linear(s.normed, rows: rows, weight: layer.fc1, bias: layer.fc1Bias.pointer, into: s.inner, pool: pool)
        activation.apply(s.inner, count: rows * c.intermediateSize)
        linear(s.inner, rows: rows, weight: layer.fc2, bias: layer.fc2Bias.pointer, into: s.projected, pool: pool)
        addGated(s.projected, gate: layer.mlpGate, into: s.hidden, count: rows * width)
    }

    private func addGated(_ x: UnsafePointer<Float>, gate: Float?, into y: UnsafeMutablePointer<Float>, count: Int) {
        guard let gate else { add(x, into: y, count: count); return }
        for i in 0..<count { y[i] += gate * x[i] }
    }

    /// Multi-head attention of every row over every row under transformers' aspect-ratio mask, which
    /// only separates two masked rows: a real row attends to all rows (padding included), a masked row
    /// to the real rows only. 11B's 6,432 rows make each layer about 10¹¹ multiply-adds.
    private func attend(_ s: Scratch) {
        s.attention(query: s.query, key: s.key, value: s.value, width: config.hiddenSize, masked: s.masked, into: s.attended, pool: pool)
    }

    /// Per-image working memory, rows = maxTiles · paddedTileRows.
    private final class Scratch: @unchecked Sendable {
        let hidden, normed, query, key, value, attended, projected: UnsafeMutablePointer<Float> // (rows, hidden)
        let inner: UnsafeMutablePointer<Float> // (rows, intermediate); also the patch embeddings
        let patches: UnsafeMutablePointer<Float> // (tiles · patches, 3·patch·patch)
        let embedding: UnsafeMutablePointer<Float> // one tile's slice of a tile-position row (tileRows, hidden)
        let attention: BidirectionalAttention
        let masked: UnsafeMutablePointer<Bool> // (rows)

        init(config c: MllamaVisionConfig) {
            let rows = c.maxNumTiles * c.paddedTileRows, width = c.hiddenSize
            hidden = .allocate(capacity: rows * width); normed = .allocate(capacity: rows * width)
            query = .allocate(capacity: rows * width); key = .allocate(capacity: rows * width)
            value = .allocate(capacity: rows * width); attended = .allocate(capacity: rows * width)
            projected = .allocate(capacity: rows * width)
            inner = .allocate(capacity: rows * max(c.intermediateSize, width))
            patches = .allocate(capacity: c.maxNumTiles * c.patchesPerSide * c.patchesPerSide * 3 * c.patchSize * c.patchSize)
            embedding = .allocate(capacity: max(c.tileRows, c.maxNumTiles) * width)
            attention = BidirectionalAttention(rows: rows, headDim: c.headDim)
            masked = .allocate(capacity: rows)
        }

        func deallocate() {
            for buffer in [
                hidden, normed, query, key, value, attended, projected, inner, patches, embedding
            ] {
                buffer.deallocate()
            }
            masked.deallocate()
        }
    }
}
