import Foundation
import Kernels
import ModelFormats

/// Where a Llama-family decoder's tensors live in a checkpoint: `model.X` + `lm_head.weight` for a
/// causal LM; LLaVA nests it as `model.language_model.X` + `lm_head.weight` (transformers ≥ 4.52 in
/// memory) or `language_model.model.X` + `language_model.lm_head.weight` (files saved by transformers
/// 5 and the llava-hf hub).
public struct LlamaTensorNames: Sendable, Equatable {
    /// Prefix of `embed_tokens`, `layers.N.…` and `norm`.
    public var decoder: String
    public var lmHead: String
    /// Rows of the head: nil for a language-model head (one per vocabulary entry, possibly tied to
    /// the embedding); a label count for a sequence classifier's `score` head (never tied).
    public var headRows: Int?

    public init(decoder: String, lmHead: String, headRows: Int? = nil) {
        self.decoder = decoder
        self.lmHead = lmHead
        self.headRows = headRows
    }

    public static let causalLM = LlamaTensorNames(decoder: "model.", lmHead: "lm_head.weight")

    /// `LlamaForSequenceClassification` and its Qwen2 and Mistral kin: `model.X` + `score.weight` (labels, hidden).
    public static func sequenceClassification(labels: Int) -> LlamaTensorNames {
        LlamaTensorNames(decoder: "model.", lmHead: "score.weight", headRows: labels)
    }
}

/// The tensors of a Llama-family decoder (Llama, Qwen2, Mistral share this layout), taken from a
/// checkpoint with their shapes checked. Matrices stay where the checkpoint maps them, in their
/// stored dtype (f32, f16 or bf16); only the small norm and bias vectors are widened to f32.
struct LlamaWeights {
    struct Layer {
        let inputNorm: FloatTensor // model.layers.N.input_layernorm.weight (hidden)
        let q: WeightMatrix // self_attn.q_proj.weight (heads·headDim, hidden)
        let k: WeightMatrix // self_attn.k_proj.weight (kvHeads·headDim, hidden)
        let v: WeightMatrix // self_attn.v_proj.weight (kvHeads·headDim, hidden)
        let o: WeightMatrix // self_attn.o_proj.weight (hidden, heads·headDim)
        let qBias, kBias, vBias, oBias: FloatTensor?
        let postAttentionNorm: FloatTensor // post_attention_layernorm.weight (hidden)
        let gate: WeightMatrix // mlp.gate_proj.weight (intermediate, hidden)
        let up: WeightMatrix // mlp.up_proj.weight (intermediate, hidden)
        let down: WeightMatrix // mlp.down_proj.weight (hidden, intermediate)
        let gateBias, upBias, downBias: FloatTensor?
    }

    /// Keeps the mapped files that the matrices point into alive.
    let checkpoint: any WeightSource
    let embedding: WeightMatrix // model.embed_tokens.weight (vocab, hidden)
    let layers: [Layer]
    let finalNorm: FloatTensor // model.norm.weight (hidden)
    let lmHead: WeightMatrix // lm_head.weight (vocab, hidden), or the embedding when tied; score.weight (labels, hidden)
    let tiedHead: Bool

    /// Takes the decoder's tensors; the caller verifies that nothing else was left in the checkpoint.
    init(checkpoint: any WeightSource, config c: TextModelConfig, names: LlamaTensorNames = .causalLM) throws {
        self.checkpoint = checkpoint
        let hidden = c.hiddenSize, qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        func vector(_ name: String, _ size: Int) throws -> FloatTensor { try checkpoint.floatTensor(name, shape: [size]) }
        func bias(_ name: String, _ size: Int, _ present: Bool) throws -> FloatTensor? { present ? try vector(name, size) : nil }
        func matrix(_ name: String, _ rows: Int, _ columns: Int) throws -> WeightMatrix {
            try checkpoint.productMatrix(name, rows: rows, columns: columns)
        }

        // Looked up row by row only (unless tied to the head below), so never packed.
        embedding = try checkpoint.weightMatrix(names.decoder + "embed_tokens.weight", rows: c.vocabSize, columns: hidden)
        layers = try (0..<c.numHiddenLayers).map { i in
            let p = names.decoder + "layers.\(i)."
            return Layer(
                inputNorm: try vector(p + "input_layernorm.weight", hidden),
                q: try matrix(p + "self_attn.q_proj.weight", qWidth, hidden),
                k: try matrix(p + "self_attn.k_proj.weight", kvWidth, hidden),
                v: try matrix(p + "self_attn.v_proj.weight", kvWidth, hidden),
                o: try matrix(p + "self_attn.o_proj.weight", hidden, qWidth),
                qBias: try bias(p + "self_attn.q_proj.bias", qWidth, c.qkvBias),
                kBias: try bias(p + "self_attn.k_proj.bias", kvWidth, c.qkvBias),
                vBias: try bias(p + "self_attn.v_proj.bias", kvWidth, c.qkvBias),
                oBias: try bias(p + "self_attn.o_proj.bias", hidden, c.oProjBias),
                postAttentionNorm: try vector(p + "post_attention_layernorm.weight", hidden),
                gate: try matrix(p + "mlp.gate_proj.weight", c.intermediateSize, hidden),
                up: try matrix(p + "mlp.up_proj.weight", c.intermediateSize, hidden),
                down: try matrix(p + "mlp.down_proj.weight", hidden, c.intermediateSize),
                gateBias: try bias(p + "mlp.gate_proj.bias", c.intermediateSize, c.mlpBias),
                upBias: try bias(p + "mlp.up_proj.bias", c.intermediateSize, c.mlpBias),
                downBias: try bias(p + "mlp.down_proj.bias", hidden, c.mlpBias))
        }
        finalNorm = try vector(names.decoder + "norm.weight", hidden)
        // Tied checkpoints usually omit lm_head; some keep a copy, which is then taken (and used).
        tiedHead = names.headRows == nil && c.tieWordEmbeddings && !checkpoint.contains(names.lmHead)
        lmHead = tiedHead ? try checkpoint.packedForProducts(embedding) : try matrix(names.lmHead, names.headRows ?? c.vocabSize, hidden)
    }

    /// Old checkpoints carry RoPE's precomputed inverse frequencies; they are derived from config.
    static func isDerivedBuffer(_ name: String) -> Bool { name.hasSuffix("rotary_emb.inv_freq") }

    /// Bytes of weights one forward pass reads, counting a tied embedding once.
    var byteCount: Int {
        let vectors =
            [finalNorm]
            + layers.flatMap { l in
                [l.inputNorm, l.postAttentionNorm]
                    + [l.qBias, l.kBias, l.vBias, l.oBias, l.gateBias, l.upBias, l.downBias].compactMap { $0 }
            }
        let matrices = [embedding] + (tiedHead ? [] : [lmHead]) + layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] }
        return vectors.reduce(0) { $0 + $1.count * 4 } + matrices.reduce(0) { $0 + $1.byteCount }
    }
}

/// Where a model's tensors come from: a Hugging Face checkpoint, or a GGUF file answering to the
/// same names. Matrices are used where they lie; vectors are widened to f32 when stored narrower.
public protocol WeightSource: AnyObject, Sendable {
    /// The directory or file, for error messages.
    var location: URL { get }
    func contains(_ name: String) -> Bool
    /// A vector or matrix as f32 after checking its shape; marks it consumed.
    func floatTensor(_ name: String, shape: [Int]) throws -> FloatTensor
    /// A tensor of row-major shape `shape` used in place in its stored type as a matrix of
    /// `shape[0]` rows (a convolution's kernels flattened, for one); marks it consumed.
    func weightMatrix(_ name: String, shape: [Int]) throws -> WeightMatrix
    /// Copies the stored bytes of rows `rows` of one of its matrices into `destination`, from a file
    /// without mapping them where it can (so packing them leaves no file pages resident).
    func readRows(of matrix: WeightMatrix, rows: Range<Int>, into destination: UnsafeMutableRawPointer) throws
    /// Throws naming every tensor the model did not take, except those `ignoring` accepts.
    func verifyAllConsumed(ignoring: (String) -> Bool) throws
}

extension WeightSource {
    /// A (rows, columns) matrix used in place in its stored type; marks it consumed.
    func weightMatrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
        try weightMatrix(name, shape: [rows, columns])
    }

    /// A one-element tensor (a gate) as f32.
    func scalar(_ name: String) throws -> Float {
        let tensor = try floatTensor(name, shape: [1])
        // Converted (f16/bf16) tensors own their memory: keep it alive while it is read.
        return withExtendedLifetime(tensor) { tensor.pointer[0] }
    }

    /// A matrix that `linear` multiplies: `weightMatrix`, packed when its format is
    /// (`WeightMatrix.Element.isQuantized`).
    func productMatrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
        try packedForProducts(try weightMatrix(name, rows: rows, columns: columns))
    }

    /// Row `row` of the embedding table `matrix` as f32 into `out`, its bytes read by `readRows` into
    /// `scratch` (one row's bytes): from a GGUF file with `pread`, not through the mapping. Faulting
    /// a mapped row in brings its neighbours with it (read-around): random token rows left 0.5 MB
    /// resident a lookup (a 1.7B Llama 3.2 Vision's q8_0 file: 220 MB of the table mapped after
    /// 400 tokens), and a tied table whose rows the head packed would be held twice.
    func lookUp(row: Int, of matrix: WeightMatrix, into out: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer) throws {
        try readRows(of: matrix, rows: row..<row + 1, into: scratch)
        WeightMatrix(base: UnsafeRawPointer(scratch), element: matrix.element, rows: 1, columns: matrix.columns).widenRow(0, into: out)
    }

    /// `matrix.packedForProducts`, its rows read by `readRows`: the packed copy is then all that
    /// resident memory holds of them.
    func packedForProducts(_ matrix: WeightMatrix) throws -> WeightMatrix {
        try matrix.packedForProducts { rows, buffer in try readRows(of: matrix, rows: rows, into: buffer) }
    }
}

extension Checkpoint: WeightSource {
    public var location: URL { directory }

    /// A checkpoint's matrices are float formats, used where they lie and never packed: this copies
    /// from the mapping.
    public func readRows(of matrix: WeightMatrix, rows: Range<Int>, into destination: UnsafeMutableRawPointer) throws {
        destination.copyMemory(from: matrix.base + rows.lowerBound * matrix.rowBytes, byteCount: rows.count * matrix.rowBytes)
    }

    /// A matrix used in place in its stored dtype; other dtypes are an error naming the tensor.
    public func weightMatrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        let (info, bytes) = try storedTensor(name, shape: shape)
        return try WeightMatrix(stored: info, bytes: bytes, rows: shape[0], columns: shape.dropFirst().reduce(1, *))
    }
}
