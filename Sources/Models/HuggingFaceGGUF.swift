import Foundation
import Kernels
import ModelFormats

/// A Hugging Face text checkpoint (`config.json` + safetensors, single or sharded, f32/f16/bf16)
/// written as a GGUF file llama.cpp loads, laid out as llama.cpp's `convert_hf_to_gguf.py` lays it
/// out: its tensor names, its `general.*` and `<arch>.*` keys, llama's query/key rows permuted for
/// llama.cpp's RoPE on neighbouring pairs (Qwen2 keeps rotate-half rows: llama.cpp runs it with
/// NEOX RoPE), Llama 3 RoPE as a `rope_freqs` tensor, vectors in F32, matrices in the formats
/// `MatrixFormats` picks (llama-quantize's rules). The tokenizer's `tokenizer.ggml.*` keys come from
/// the caller (the Tokenization module writes them). Tensors are written in llama-quantize's order
/// (the non-layer tensors, then layer by layer, each group by name).
public enum HuggingFaceGGUF {
    /// Checkpoint architectures this writes, with llama.cpp's architecture name.
    public static let architectures = ["LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"]

    /// One tensor of the output: where its values come from and how its rows are reordered.
    struct Planned {
        var name: String
        /// The checkpoint tensor, or nil for `rope_freqs.weight` (computed).
        var source: String?
        /// Rows and columns as Hugging Face stores them (a vector: 1 row).
        var rows, columns: Int
        var isVector: Bool
        /// Heads whose rows are reordered rotate-half → interleaved pairs (llama's q and k).
        var permuteHeads: Int?
    }

    /// Writes the model in `directory` to `output` as `fileType`, with `tokenizer` (the
    /// `tokenizer.ggml.*` and `tokenizer.chat_template` keys) after the model's keys. Returns each
    /// written tensor's type by name. Vision checkpoints (LLaVA, Mllama) are refused with the reason.
    @discardableResult
    public static func convert(
        directory: URL, to output: URL, as fileType: GGUFQuantization.FileType, tokenizer: [(key: String, value: GGUFValue)]
    ) throws -> [String: GGMLType] {
        let architecture = try checkArchitecture(directory)
        let config = try TextModelConfig.load(from: directory)
        let checkpoint = try Checkpoint(directory: directory)
        let plans = try plan(config: config, architecture: architecture, checkpoint: checkpoint)
        try checkpoint.verifyAllConsumed { $0.hasSuffix("rotary_emb.inv_freq") }

        var writer = GGUFWriter()
        writer.metadata = [
            ("general.architecture", .string(architecture)), ("general.type", .string("model")),
            ("general.name", .string(directory.standardizedFileURL.lastPathComponent))
        ]
        writer.metadata += try samplingDefaults(directory)
        writer.metadata += try hyperparameters(config, architecture: architecture, headDimGiven: readConfig(directory)["head_dim"] != nil)
        writer.metadata += GGUFQuantization.fileTypeMetadata(fileType)
        writer.metadata += tokenizer

        let formats = MatrixFormats(fileType, matrixNames: plans.filter { !$0.isVector }.map(\.name))
        var targets: [WeightMatrix.Element] = []
        for plan in plans {
            let target: WeightMatrix.Element = plan.isVector ? .f32 : formats.element(for: plan.name, columns: plan.columns)
            targets.append(target)
            let dimensions = plan.isVector ? [plan.columns] : [plan.columns, plan.rows]
            writer.tensors.append(.init(name: plan.name, type: GGUFQuantization.ggmlType(target), dimensions: dimensions))
        }

        let row = UnsafeMutablePointer<Float>.allocate(capacity: plans.map(\.columns).max() ?? 0)
        defer { row.deallocate() }
        try writer.write(to: output) { index, buffer in
            let (plan, target) = (plans[index], targets[index])
            guard let source = plan.source else {
                let factors = llama3RopeFactors(config)
                factors.withUnsafeBufferPointer { target.quantize($0.baseAddress!, count: factors.count, into: buffer.baseAddress!) }
                return
            }
            let (info, bytes) = try checkpoint.storedTensor(source, shape: plan.isVector ? [plan.columns] : [plan.rows, plan.columns])
            let matrix = try WeightMatrix(stored: info, bytes: bytes, rows: plan.rows, columns: plan.columns)
            if plan.isVector, let heads = plan.permuteHeads {
                // A bias: one value per row of its matrix, reordered as the rows are.
                matrix.widenRow(0, into: row)
                let values = Array(UnsafeBufferPointer(start: row, count: plan.columns))
                for i in 0..<plan.columns { row[i] = values[sourceRow(i, rows: plan.columns, heads: heads)] }
                target.quantize(row, count: plan.columns, into: buffer.baseAddress!)
                return
            }
            let rowBytes = target.rowBytes(columns: plan.columns)!
            for r in 0..<plan.rows {
                matrix.widenRow(plan.permuteHeads.map { sourceRow(r, rows: plan.rows, heads: $0) } ?? r, into: row)
                target.quantize(row, count: plan.columns, into: buffer.baseAddress! + r * rowBytes)
            }
        }
        return Dictionary(uniqueKeysWithValues: writer.tensors.map { ($0.name, $0.type) })
    }

    /// llama.cpp's architecture name for the checkpoint, or an error naming what is not converted
    /// and why.
    @discardableResult
    public static func checkArchitecture(_ directory: URL) throws -> String {
        let json = try readConfig(directory)
        let url = directory.appendingPathComponent("config.json")
        let declared = json["architectures"] as? [String] ?? []
        let modelType = json["model_type"] as? String ?? "?"
        if ["llava", "mllama"].contains(modelType) || declared.contains(where: { $0.hasSuffix("ForConditionalGeneration") }) {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "\(url.path): \(declared.first ?? modelType) is a vision-language model; a GGUF file is written for text models only. "
                    + "llama.cpp reads a vision model as two files (the text decoder and an mmproj projector file of its own "
                    + "format), and neither llama.cpp nor transformers reads a GGUF file holding the whole model, so there is "
                    + "no file both could check; stagebeam runs this checkpoint from its safetensors (f32, f16 or bf16) "
                    + "(a Llama 3.2 Vision checkpoint is quantized into a directory of stagebeam's own layout)")
        }
        guard let architecture = declared.lazy.compactMap({ architectures[$0] }).first else {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "\(url.path): architectures \(declared) (model_type '\(modelType)') are not converted; quantize converts "
                    + architectures.keys.sorted().joined(separator: " and "))
        }
        return architecture
    }

    /// config.json as read for the keys `TextModelConfig` does not keep.
    static func readConfig(_ directory: URL) throws -> [String: Any] {
        let url = directory.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ModelFormatError(
                .fileNotFound, "\(directory.path) has no config.json (quantize reads a GGUF file or a Hugging Face model directory)")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelFormatError(.badConfig, "\(url.path) is not a JSON object")
        }
        return json
    }

    /// The output's tensors in llama-quantize's order, each checked against the checkpoint.
    static func plan(config: TextModelConfig, architecture: String, checkpoint: Checkpoint) throws -> [Planned] {
        let (hidden, vocab, headDim) = (config.hiddenSize, config.vocabSize, config.headDim)
        let (heads, kvHeads) = (config.numAttentionHeads, config.numKeyValueHeads)
        let permute = architecture == "llama"
        func matrix(_ name: String, _ source: String, _ rows: Int, _ columns: Int, heads: Int? = nil) -> Planned {
            Planned(name: name, source: source, rows: rows, columns: columns, isVector: false, permuteHeads: heads)
        }
        func vector(_ name: String, _ source: String, _ count: Int, heads: Int? = nil) -> Planned {
            Planned(name: name, source: source, rows: 1, columns: count, isVector: true, permuteHeads: heads)
        }
        var global = [
            matrix("token_embd.weight", "model.embed_tokens.weight", vocab, hidden),
            vector("output_norm.weight", "model.norm.weight", hidden)
        ]
        if checkpoint.contains("lm_head.weight") {
            global.append(matrix("output.weight", "lm_head.weight", vocab, hidden))
        }
        if permute, config.ropeScaling?.ropeType == "llama3" {
            global.append(Planned(name: "rope_freqs.weight", source: nil, rows: 1, columns: headDim / 2, isVector: true))
        }
        var planned = global.sorted { $0.name < $1.name }
        for layer in 0..<config.numHiddenLayers {
            let (blk, hf) = ("blk.\(layer).", "model.layers.\(layer).")
            var tensors = [
                vector(blk + "attn_norm.weight", hf + "input_layernorm.weight", hidden),
                vector(blk + "ffn_norm.weight", hf + "post_attention_layernorm.weight", hidden),
                matrix(blk + "attn_q.weight", hf + "self_attn.q_proj.weight", heads * headDim, hidden, heads: permute ? heads : nil),
                matrix(blk + "attn_k.weight", hf + "self_attn.k_proj.weight", kvHeads * headDim, hidden, heads: permute ? kvHeads : nil),
                matrix(blk + "attn_v.weight", hf + "self_attn.v_proj.weight", kvHeads * headDim, hidden),
                matrix(blk + "attn_output.weight", hf + "self_attn.o_proj.weight", hidden, heads * headDim),
                matrix(blk + "ffn_gate.weight", hf + "mlp.gate_proj.weight", config.intermediateSize, hidden),
                matrix(blk + "ffn_up.weight", hf + "mlp.up_proj.weight", config.intermediateSize, hidden),
                matrix(blk + "ffn_down.weight", hf + "mlp.down_proj.weight", hidden, config.intermediateSize)
            ]
            if config.qkvBias {
                tensors += [
                    vector(blk + "attn_q.bias", hf + "self_attn.q_proj.bias", heads * headDim, heads: permute ? heads : nil),
                    vector(blk + "attn_k.bias", hf + "self_attn.k_proj.bias", kvHeads * headDim, heads: permute ? kvHeads : nil),
                    vector(blk + "attn_v.bias", hf + "self_attn.v_proj.bias", kvHeads * headDim)
                ]
            }
            if config.oProjBias { tensors.append(vector(blk + "attn_output.bias", hf + "self_attn.o_proj.bias", hidden)) }
            if config.mlpBias {
                tensors += [
                    vector(blk + "ffn_gate.bias", hf + "mlp.gate_proj.bias", config.intermediateSize),
                    vector(blk + "ffn_up.bias", hf + "mlp.up_proj.bias", config.intermediateSize),
                    vector(blk + "ffn_down.bias", hf + "mlp.down_proj.bias", hidden)
                ]
            }
            planned += tensors.sorted { $0.name < $1.name }
        }
        // Check every shape now (and mark the tensors used), so that a wrong checkpoint fails before
        // anything is written.
        for plan in planned {
            guard let source = plan.source else { continue }
            _ = try checkpoint.storedTensor(source, shape: plan.isVector ? [plan.columns] : [plan.rows, plan.columns])
        }
        return planned
    }

    /// Which stored row lands at row `r` when rotate-half rows (each head: its first half, then its
    /// second) become llama.cpp's interleaved pairs (each head: first[0], second[0], first[1], …).
    static func sourceRow(_ r: Int, rows: Int, heads: Int) -> Int {
        let headRows = rows / heads
        let (head, within) = (r / headRows, r % headRows)
        return head * headRows + (within % 2) * (headRows / 2) + within / 2
    }

    /// generation_config.json's sampling settings as the `general.sampling.*` keys llama.cpp takes as
    /// its defaults (the ones the converter copies that transformers checkpoints set).
    static func samplingDefaults(_ directory: URL) throws -> [(key: String, value: GGUFValue)] {
        let url = directory.appendingPathComponent("generation_config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else { return [] }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelFormatError(.badConfig, "\(url.path) is not a JSON object")
        }
        var keys: [(key: String, value: GGUFValue)] = []
        if let topK = json["top_k"] as? Int { keys.append(("general.sampling.top_k", .int32(Int32(clamping: topK)))) }
        for (name, key) in [("top_p", "top_p"), ("min_p", "min_p"), ("temperature", "temp"), ("repetition_penalty", "penalty_repeat")] {
            if let number = json[name] as? NSNumber, !(json[name] is Bool) {
                keys.append(("general.sampling.\(key)", .float32(number.floatValue)))
            }
        }
        return keys
    }

    /// The `<arch>.*` keys llama.cpp's converter writes for these models (the key and value widths
    /// only when config.json gives `head_dim`).
    static func hyperparameters(_ config: TextModelConfig, architecture: String, headDimGiven: Bool) -> [(key: String, value: GGUFValue)] {
        var keys: [(key: String, value: GGUFValue)] = [
            ("block_count", .uint32(UInt32(config.numHiddenLayers))),
            ("context_length", .uint32(UInt32(config.maxPositionEmbeddings))),
            ("embedding_length", .uint32(UInt32(config.hiddenSize))),
            ("feed_forward_length", .uint32(UInt32(config.intermediateSize))),
            ("attention.head_count", .uint32(UInt32(config.numAttentionHeads))),
            ("attention.head_count_kv", .uint32(UInt32(config.numKeyValueHeads))),
            ("rope.freq_base", .float32(config.ropeTheta)),
            ("attention.layer_norm_rms_epsilon", .float32(config.rmsNormEps))
        ]
        if headDimGiven {
            keys += [("attention.key_length", .uint32(UInt32(config.headDim))), ("attention.value_length", .uint32(UInt32(config.headDim)))]
        }
        if let scaling = config.ropeScaling {
            switch scaling.ropeType {
            case "linear":
                keys += [("rope.scaling.type", .string("linear")), ("rope.scaling.factor", .float32(scaling.factor))]
            case "yarn":
                keys += [("rope.scaling.type", .string("yarn")), ("rope.scaling.factor", .float32(scaling.factor))]
                if let original = scaling.originalMaxPositionEmbeddings {
                    keys.append(("rope.scaling.original_context_length", .uint32(UInt32(original))))
                }
                if let factor = scaling.attentionFactor { keys.append(("rope.scaling.yarn_attn_factor", .float32(factor))) }
                if let fast = scaling.betaFast { keys.append(("rope.scaling.yarn_beta_fast", .float32(fast))) }
                if let slow = scaling.betaSlow { keys.append(("rope.scaling.yarn_beta_slow", .float32(slow))) }
            default: break // llama3: the rope_freqs tensor
            }
        }
        if architecture == "llama" {
            keys += [("vocab_size", .uint32(UInt32(config.vocabSize))), ("rope.dimension_count", .uint32(UInt32(config.headDim)))]
        }
        return keys.map { ("\(architecture).\($0.key)", $0.value) }
    }

    /// Llama 3 RoPE as llama.cpp takes it: one divisor per rotated pair (1 for short wavelengths,
    /// `factor` for long ones, a smooth blend between), rounded as the converter's arithmetic rounds.
    static func llama3RopeFactors(_ config: TextModelConfig) -> [Float] {
        let scaling = config.ropeScaling!
        let factor = Double(scaling.factor)
        let low = Double(scaling.lowFreqFactor ?? 1), high = Double(scaling.highFreqFactor ?? 4)
        let original = Double(scaling.originalMaxPositionEmbeddings ?? 8192)
        let (lowWavelength, highWavelength) = (original / low, original / high)
        return stride(from: 0, to: config.headDim, by: 2).map { i in
            // The inverse frequency in f32 (as the converter's torch tensor), the rest in f64.
            let frequency = Double(1 / pow(config.ropeTheta, Float(i) / Float(config.headDim)))
            let wavelength = 2 * Double.pi / frequency
            if wavelength < highWavelength { return 1 }
            if wavelength > lowWavelength { return Float(factor) }
            let smooth = (original / wavelength - low) / (high - low)
            return Float(1 / ((1 - smooth) / factor + smooth))
        }
    }
}
