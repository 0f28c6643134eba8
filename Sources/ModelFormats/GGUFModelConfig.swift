import Foundation

extension TextModelConfig {
    /// GGUF architectures (`general.architecture`) read as a Llama-family decoder.
    public static let supportedGGUFArchitectures = ["llama", "qwen2"]

    /// The configuration a GGUF file's metadata describes (`<arch>.block_count`,
    /// `<arch>.embedding_length`, …), as transformers derives it when it loads the same file:
    /// the vocabulary is the embedding's rows, and the embeddings are tied when `output.weight` is absent.
    public init(gguf file: GGUFFile) throws {
        let architecture = try file.string("general.architecture")
        guard Self.supportedGGUFArchitectures.contains(architecture) else {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "\(file.url.path): GGUF architecture '\(architecture)' is not supported (supported: \(Self.supportedGGUFArchitectures.joined(separator: ", ")))"
            )
        }
        func key(_ suffix: String) -> String { "\(architecture).\(suffix)" }
        guard let embedding = file.tensors["token_embd.weight"], embedding.dimensions.count == 2 else {
            throw ModelFormatError(.missingTensor, "\(file.url.path): no 2-dimensional token_embd.weight tensor")
        }
        let heads = try file.integer(key("attention.head_count"))
        var json: [String: Any] = [
            "model_type": architecture,
            "hidden_size": try file.integer(key("embedding_length")),
            "intermediate_size": try file.integer(key("feed_forward_length")),
            "num_hidden_layers": try file.integer(key("block_count")),
            "num_attention_heads": heads,
            "num_key_value_heads": try file.optionalInteger(key("attention.head_count_kv")) ?? heads,
            "vocab_size": embedding.dimensions[1],
            "tie_word_embeddings": file.tensors["output.weight"] == nil
        ]
        json["max_position_embeddings"] = try file.optionalInteger(key("context_length"))
        json["rms_norm_eps"] = try file.optionalFloat(key("attention.layer_norm_rms_epsilon")).map { Double($0) }
        json["rope_theta"] = try file.optionalFloat(key("rope.freq_base")).map { Double($0) }
        // The per-head width, where the file gives it (newer converters write key_length).
        json["head_dim"] = try file.optionalInteger(key("attention.key_length")) ?? file.optionalInteger(key("rope.dimension_count"))
        // RoPE scaling under llama.cpp's keys (llama3-style scaling comes as a rope_freqs tensor instead).
        if let type = try file.optionalString(key("rope.scaling.type")), type != "none" {
            guard type == "linear" || type == "yarn", let factor = try file.optionalFloat(key("rope.scaling.factor")) else {
                throw ModelFormatError(
                    .unsupportedArchitecture,
                    "\(file.url.path): RoPE scaling '\(type)' is not supported (linear and yarn are, with rope.scaling.factor)")
            }
            var scaling: [String: Any] = ["rope_type": type, "factor": Double(factor)]
            if type == "yarn" {
                guard let original = try file.optionalInteger(key("rope.scaling.original_context_length")) else {
                    throw ModelFormatError(.badConfig, "\(file.url.path): yarn RoPE scaling without rope.scaling.original_context_length")
                }
                scaling["original_max_position_embeddings"] = original
                scaling["beta_fast"] = try file.optionalFloat(key("rope.scaling.yarn_beta_fast")).map { Double($0) }
                scaling["beta_slow"] = try file.optionalFloat(key("rope.scaling.yarn_beta_slow")).map { Double($0) }
                // cos and sin are scaled by 0.1·ln(factor) + 1, transformers' default and llama.cpp's with
                // yarn_attn_factor 1; other attention factors are not checked against either.
                if let attention = try file.optionalFloat(key("rope.scaling.yarn_attn_factor")), attention != 1 {
                    throw ModelFormatError(
                        .unsupportedArchitecture, "\(file.url.path): rope.scaling.yarn_attn_factor \(attention) is not supported (only 1)")
                }
            }
            json["rope_scaling"] = scaling
        }
        json["bos_token_id"] = try file.optionalInteger("tokenizer.ggml.bos_token_id")
        json["eos_token_id"] = try file.optionalInteger("tokenizer.ggml.eos_token_id")

        let data = try JSONSerialization.data(withJSONObject: json)
        do {
            self = try JSONDecoder().decode(TextModelConfig.self, from: data)
        } catch let error as ModelFormatError {
            throw ModelFormatError(error.code, "\(file.url.path): \(error.message)")
        } catch {
            throw ModelFormatError(.badConfig, "\(file.url.path): the metadata does not describe a decoder (\(error))")
        }
        if let ropeWidth = try file.optionalInteger(key("rope.dimension_count")), ropeWidth != headDim {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "\(file.url.path): RoPE over \(ropeWidth) of \(headDim) head dimensions (partial rotary) is not supported")
        }
    }
}
