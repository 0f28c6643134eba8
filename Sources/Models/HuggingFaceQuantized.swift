import Foundation
import Kernels
import ModelFormats

/// A Llama 3.2 Vision checkpoint with its text decoder quantized, in stagebeam's own layout: a
/// Hugging Face directory whose files are copied as they are (config, tokenizer, processor, chat
/// template) and whose safetensors are replaced by one GGUF file, `model.gguf`, holding every tensor
/// under its Hugging Face name. The decoder's matrices (self- and cross-attention q/k/v/o, the MLP's
/// gate/up/down, `lm_head`, and the token embedding, whose rows lookups de-quantize) are stored in the
/// requested ggml type, chosen by the rules llama-quantize applies to a text model (`MatrixFormats`:
/// a cross-attention layer's projections count as its layer's attention); every other tensor (norms,
/// gates, the vision encoder, the projector) keeps its stored F32, F16 or BF16 bytes. The decoder
/// holds nearly all of the weights (9.8 of Llama 3.2 11B Vision's 10.7 billion) and its products are
/// the ones decode reads for every token; the vision encoder runs once per image.
///
/// Why not a GGUF file llama.cpp reads: llama.cpp reads a vision model as two files (the decoder,
/// and a vision projector file of its own layout), and neither llama.cpp nor transformers reads a
/// GGUF file of a whole Mllama model, so no such file could be checked against a reference. This
/// layout is checked instead against transformers running the same checkpoint with the stored
/// weights de-quantized (`scripts/fixtures/make_mllama_quantized_fixtures.py`).
public enum HuggingFaceQuantized {
    /// The weights file of a quantized checkpoint directory.
    public static let weightsFileName = "model.gguf"
    /// The metadata key that marks the weights file, and its value.
    static let layoutKey = "stagebeam.tensor_names", layoutValue = "huggingface"

    /// The tensors of the Hugging Face directory `directory`: its weights file when it holds one,
    /// its safetensors otherwise.
    static func weights(in directory: URL) throws -> any WeightSource {
        let url = directory.appendingPathComponent(weightsFileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return try Checkpoint(directory: directory) }
        let file = try GGUFFile(url: url)
        guard isWeightsFile(file) else {
            throw ModelFormatError(
                .badConfig,
                "\(url.path) is not the weights file of a quantized checkpoint (no \(layoutKey) = \(layoutValue)); "
                    + "a GGUF model file is given as --model FILE.gguf itself")
        }
        return GGUFWeights(file: file, naming: .huggingFace)
    }

    /// Whether `file` is the weights file of a quantized checkpoint directory.
    public static func isWeightsFile(_ file: GGUFFile) -> Bool {
        (try? file.optionalString(layoutKey)) == layoutValue
    }

    /// Whether `quantize` writes `directory` in this layout (a Llama 3.2 Vision checkpoint).
    public static func accepts(_ directory: URL) throws -> Bool {
        let json = try HuggingFaceGGUF.readConfig(directory)
        return json["model_type"] as? String == "mllama"
            || (json["architectures"] as? [String] ?? []).contains("MllamaForConditionalGeneration")
    }

    /// Writes the checkpoint in `directory` to the new directory `output` with its decoder's matrices
    /// as `fileType`. Returns each tensor's written type by name.
    @discardableResult
    public static func write(directory: URL, to output: URL, as fileType: GGUFQuantization.FileType) throws -> [String: GGMLType] {
        guard try accepts(directory) else {
            throw ModelFormatError(
                .unsupportedArchitecture, "\(directory.path): a quantized checkpoint directory is written for Llama 3.2 Vision only")
        }
        _ = try MllamaConfig.load(from: directory) // a config the model cannot read is refused before anything is written
        let checkpoint = try Checkpoint(directory: directory)
        guard let layout = MllamaModel.layouts.first(where: { checkpoint.contains($0.vision + "patch_embedding.weight") }) else {
            throw ModelFormatError(.missingTensor, "\(directory.path): no vision encoder tensors under any known Llama 3.2 Vision layout")
        }
        let fm = FileManager.default
        if fm.fileExists(atPath: output.path) {
            guard (try? fm.contentsOfDirectory(atPath: output.path))?.isEmpty == true else {
                throw ModelFormatError(.unwritableFile, "\(output.path) exists and is not an empty directory; quantize writes a new one")
            }
        } else {
            do {
                try fm.createDirectory(at: output, withIntermediateDirectories: true)
            } catch {
                throw ModelFormatError(.unwritableFile, "cannot create the directory \(output.path)")
            }
        }

        let names = checkpoint.tensorNames.filter { !LlamaWeights.isDerivedBuffer($0) }
        let roles = Dictionary(
            uniqueKeysWithValues: names.compactMap { name in role(of: name, language: layout.language).map { (name, $0) } })
        let formats = MatrixFormats(fileType, matrixNames: Array(roles.values))
        var writer = GGUFWriter()
        writer.metadata = [
            ("general.architecture", .string("mllama")), ("general.type", .string("model")),
            ("general.name", .string(directory.standardizedFileURL.lastPathComponent)), (layoutKey, .string(layoutValue))
        ]
        writer.metadata += GGUFQuantization.fileTypeMetadata(fileType)
        var targets: [WeightMatrix.Element] = []
        for name in names {
            let info = checkpoint.info(name)!
            let stored = try WeightMatrix.Element(stored: info)
            let target = roles[name].map { formats.element(for: $0, columns: info.shape[1]) } ?? stored
            targets.append(target)
            writer.tensors.append(.init(name: name, type: GGUFQuantization.ggmlType(target), dimensions: info.shape.reversed()))
        }

        let widest = names.compactMap { roles[$0] == nil ? nil : checkpoint.info($0)!.shape[1] }.max() ?? 0
        let row = UnsafeMutablePointer<Float>.allocate(capacity: widest)
        defer { row.deallocate() }
        try writer.write(to: output.appendingPathComponent(weightsFileName)) { index, buffer in
            let (name, target) = (names[index], targets[index])
            let info = checkpoint.info(name)!
            let (_, bytes) = try checkpoint.storedTensor(name, shape: info.shape)
            guard roles[name] != nil else {
                buffer.copyMemory(from: bytes)
                return
            }
            let (rows, columns) = (info.shape[0], info.shape[1])
            let matrix = try WeightMatrix(stored: info, bytes: bytes, rows: rows, columns: columns)
            let rowBytes = target.rowBytes(columns: columns)!
            for r in 0..<rows {
                matrix.widenRow(r, into: row)
                target.quantize(row, count: columns, into: buffer.baseAddress! + r * rowBytes)
            }
        }
        try copyOtherFiles(from: directory, to: output)
        return Dictionary(uniqueKeysWithValues: writer.tensors.map { ($0.name, $0.type) })
    }

    /// The llama.cpp name whose rules `MatrixFormats` applies to a decoder matrix (`blk.N.attn_v.weight`,
    /// `output.weight`, `token_embd.weight` …), or nil for a tensor kept as stored.
    static func role(of name: String, language: LlamaTensorNames) -> String? {
        if name == language.lmHead { return "output.weight" }
        if name == language.decoder + "embed_tokens.weight" { return "token_embd.weight" }
        let prefix = language.decoder + "layers."
        guard name.hasPrefix(prefix) else { return nil }
        let parts = name.dropFirst(prefix.count).split(separator: ".")
        guard parts.count == 4, let layer = Int(parts[0]), parts[3] == "weight" else { return nil }
        let modules = [
            "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output", "gate_proj": "ffn_gate",
            "up_proj": "ffn_up", "down_proj": "ffn_down"
        ]
        let attention = parts[1] == "self_attn" || parts[1] == "cross_attn"
        guard let module = modules[String(parts[2])], attention == module.hasPrefix("attn"), attention || parts[1] == "mlp" else {
            return nil
        }
        return "blk.\(layer).\(module).weight"
    }

    /// Copies every file of the checkpoint but its safetensors (and their index).
    static func copyOtherFiles(from directory: URL, to output: URL) throws {
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: directory.path).sorted()
        where !name.hasSuffix(".safetensors") && name != Checkpoint.indexFileName && name != weightsFileName {
            let source = directory.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: source.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            do {
                try fm.copyItem(at: source, to: output.appendingPathComponent(name))
            } catch {
                throw ModelFormatError(.unwritableFile, "cannot copy \(source.path) into \(output.path)")
            }
        }
    }
}
