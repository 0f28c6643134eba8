import Kernels
import ModelFormats

/// The tensors of a CLIP or SigLIP vision transformer under `prefix` (e.g. `vision_tower.` or
/// `vision_tower.vision_model.`), shapes checked. Matrices stay mapped in their stored dtype.
struct VisionWeights {
    struct Layer {
        let norm1Weight, norm1Bias: FloatTensor // layer_norm1 (hidden)
        let q, k, v, out: WeightMatrix // self_attn.{q,k,v,out}_proj.weight (hidden, hidden)
        let qBias, kBias, vBias, outBias: FloatTensor
        let norm2Weight, norm2Bias: FloatTensor // layer_norm2 (hidden)
        let fc1: WeightMatrix // mlp.fc1.weight (intermediate, hidden)
        let fc1Bias: FloatTensor
        let fc2: WeightMatrix // mlp.fc2.weight (hidden, intermediate)
        let fc2Bias: FloatTensor
    }

    /// embeddings.patch_embedding.weight (hidden, 3, patch, patch), read as (hidden, 3·patch·patch):
    /// the convolution is a matrix product over flattened (channel, row, column) patches.
    let patch: WeightMatrix
    let patchBias: FloatTensor? // SigLIP only (hidden)
    let classEmbedding: FloatTensor? // CLIP only: embeddings.class_embedding (hidden)
    let positions: FloatTensor // embeddings.position_embedding.weight (positions, hidden)
    let preNormWeight, preNormBias: FloatTensor? // CLIP only: pre_layrnorm (sic) (hidden)
    let layers: [Layer]

    /// Tensors a LLaVA feature extractor never reads: the pooled-output norm and SigLIP's
    /// attention-pooling head.
    static func isUnused(_ name: String, prefix: String) -> Bool {
        name.hasPrefix(prefix + "post_layernorm.") || name.hasPrefix(prefix + "head.")
    }

    init(checkpoint: Checkpoint, config c: VisionModelConfig, prefix p: String) throws {
        let hidden = c.hiddenSize, inner = c.intermediateSize, patchWidth = c.numChannels * c.patchSize * c.patchSize
        func vector(_ name: String, _ size: Int) throws -> FloatTensor { try checkpoint.floatTensor(p + name, shape: [size]) }
        func matrix(_ name: String, _ rows: Int, _ columns: Int) throws -> WeightMatrix {
            try checkpoint.weightMatrix(p + name, rows: rows, columns: columns)
        }
        let (info, bytes) = try checkpoint.storedTensor(
            p + "embeddings.patch_embedding.weight",
            shape: [hidden, c.numChannels, c.patchSize, c.patchSize])
        patch = try WeightMatrix(stored: info, bytes: bytes, rows: hidden, columns: patchWidth)
        let clip = c.family == .clip
        patchBias = clip ? nil : try vector("embeddings.patch_embedding.bias", hidden)
        classEmbedding = clip ? try vector("embeddings.class_embedding", hidden) : nil
        positions = try checkpoint.floatTensor(p + "embeddings.position_embedding.weight", shape: [c.positionCount, hidden])
        preNormWeight = clip ? try vector("pre_layrnorm.weight", hidden) : nil
        preNormBias = clip ? try vector("pre_layrnorm.bias", hidden) : nil
        layers = try (0..<c.numHiddenLayers).map { i in
            let l = "encoder.layers.\(i)."
            return Layer(
                norm1Weight: try vector(l + "layer_norm1.weight", hidden), norm1Bias: try vector(l + "layer_norm1.bias", hidden),
                q: try matrix(l + "self_attn.q_proj.weight", hidden, hidden),
                k: try matrix(l + "self_attn.k_proj.weight", hidden, hidden),
                v: try matrix(l + "self_attn.v_proj.weight", hidden, hidden),
                out: try matrix(l + "self_attn.out_proj.weight", hidden, hidden),
                qBias: try vector(l + "self_attn.q_proj.bias", hidden), kBias: try vector(l + "self_attn.k_proj.bias", hidden),
                vBias: try vector(l + "self_attn.v_proj.bias", hidden), outBias: try vector(l + "self_attn.out_proj.bias", hidden),
                norm2Weight: try vector(l + "layer_norm2.weight", hidden), norm2Bias: try vector(l + "layer_norm2.bias", hidden),
                fc1: try matrix(l + "mlp.fc1.weight", inner, hidden), fc1Bias: try vector(l + "mlp.fc1.bias", inner),
                fc2: try matrix(l + "mlp.fc2.weight", hidden, inner), fc2Bias: try vector(l + "mlp.fc2.bias", hidden))
        }
    }
}

extension WeightMatrix {
    /// A stored tensor viewed as a (rows, columns) matrix; dtypes other than F32/F16/BF16 are an error.
    init(stored info: TensorInfo, bytes: UnsafeRawBufferPointer, rows: Int, columns: Int) throws {
        self.init(base: bytes.baseAddress!, element: try Element(stored: info), rows: rows, columns: columns)
    }
}

extension WeightMatrix.Element {
    /// The element of a safetensors tensor; dtypes other than F32/F16/BF16 are an error naming it.
    init(stored info: TensorInfo) throws {
        switch info.dtype {
        case .f32: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        default:
            throw ModelFormatError(
                .unsupportedDType, "tensor '\(info.name)' in \(info.file.path) is \(info.dtype.rawValue); weights must be F32, F16 or BF16")
        }
    }
}
