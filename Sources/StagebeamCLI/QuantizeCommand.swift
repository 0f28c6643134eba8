import ArgumentParser
import Foundation
import ModelFormats
import Models
import Tokenization

/// `stagebeam quantize --model IN --type Q4_K_M --output OUT.gguf` (or `quantize IN OUT --type …`):
/// a GGUF file from a Hugging Face text checkpoint, or a GGUF model written again in another format;
/// from a Llama 3.2 Vision checkpoint, a quantized checkpoint directory (`HuggingFaceQuantized`).
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract:
            "Write a GGUF model (for llama.cpp and stagebeam) from a Hugging Face checkpoint or another GGUF file, or a quantized Llama 3.2 Vision checkpoint.",
        discussion: """
            The input is a Hugging Face directory of a Llama or Qwen2 text model (config.json, safetensors \
            single or sharded in f32/f16/bf16, tokenizer.json) or a GGUF file. From a directory the file is laid \
            out as llama.cpp's convert_hf_to_gguf.py lays it out (tensor names, llama's query/key row order, \
            hyperparameters, the tokenizer as tokenizer.ggml.*, the chat template). A Llama 3.2 Vision \
            (Mllama) checkpoint is written as a new directory in stagebeam's own layout instead, since no GGUF \
            layout of it is read by both llama.cpp and transformers: its files copied, and its safetensors replaced \
            by model.gguf, which holds every tensor under its Hugging Face name, the text decoder's matrices (its \
            projections, lm_head and token embedding) in the given type, everything else (norms, the vision encoder) as \
            stored; serve it with --model DIR. LLaVA checkpoints are \
            refused. Matrices are encoded with quantizers whose bytes equal ggml's reference ones (llama-quantize without \
            an importance matrix); a GGUF model file keeps vectors in F32. A plain type puts every matrix in that format (llama-quantize \
            --pure); Q4_K_M and Q5_K_M are llama-quantize's mixes (Q6_K for the output matrix and for attn_v and \
            ffn_down in some layers). Rows that are not whole blocks fall back as llama-quantize's do \
            (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, then F16). Types: \
            \(GGUFQuantization.fileTypes.map(\.name).joined(separator: ", ")).
            """)

    @Argument(help: ArgumentHelp("The model to read: a Hugging Face directory or a GGUF file (or use --model).", valueName: "model"))
    var input: String?
    @Argument(
        help: ArgumentHelp("The GGUF file (or, for Llama 3.2 Vision, the directory) to write (or use --output).", valueName: "output"))
    var outputArgument: String?
    @Option(name: .customLong("model"), help: "The model to read: a Hugging Face directory or a GGUF file.")
    var model: String?
    @Option(name: .customLong("output"), help: "The GGUF file (or, for Llama 3.2 Vision, the directory) to write.")
    var output: String?
    @Option(help: "The written type (e.g. F16, Q8_0, Q4_0, Q4_K_M, Q5_K_M).")
    var type: String

    func validate() throws {
        guard GGUFQuantization.fileType(named: type) != nil else {
            throw ValidationError(
                "unknown --type '\(type)'; known: \(GGUFQuantization.fileTypes.map(\.name).joined(separator: ", "))")
        }
        let (source, target) = try paths()
        guard URL(fileURLWithPath: source).standardizedFileURL != URL(fileURLWithPath: target).standardizedFileURL else {
            throw ValidationError("the output must be another file than the input")
        }
    }

    /// The model and the output: `--model` or the first argument, `--output` or the argument left.
    func paths() throws -> (input: String, output: String) {
        var arguments = [input, outputArgument].compactMap { $0 }
        guard let source = model ?? (arguments.isEmpty ? nil : arguments.removeFirst()) else {
            throw ValidationError("no model given: --model DIR|FILE.gguf (or the first argument)")
        }
        guard let target = output ?? (arguments.isEmpty ? nil : arguments.removeFirst()) else {
            throw ValidationError("no output given: --output FILE.gguf (or the second argument)")
        }
        guard arguments.isEmpty else {
            throw ValidationError("unexpected argument '\(arguments[0])': the model and the output are each given once")
        }
        return (source, target)
    }

    func run() throws {
        let (inputPath, outputPath) = try paths()
        let (sourceURL, outputURL) = (URL(fileURLWithPath: inputPath), URL(fileURLWithPath: outputPath))
        let fileType = GGUFQuantization.fileType(named: type)!
        let start = ContinuousClock.now
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: inputPath, isDirectory: &isDirectory) else {
            throw ModelFormatError(.fileNotFound, "\(inputPath) does not exist")
        }
        let types: [String: GGMLType]
        var written = outputPath
        if isDirectory.boolValue, try HuggingFaceQuantized.accepts(sourceURL) {
            guard outputURL.pathExtension.lowercased() != "gguf" else {
                throw ValidationError(
                    "\(inputPath) is a Llama 3.2 Vision checkpoint, written as a directory: give --output DIR, not a .gguf file name")
            }
            types = try HuggingFaceQuantized.write(directory: sourceURL, to: outputURL, as: fileType)
            written = outputURL.appendingPathComponent(HuggingFaceQuantized.weightsFileName).path
        } else if isDirectory.boolValue {
            try HuggingFaceGGUF.checkArchitecture(sourceURL)
            let config = try TextModelConfig.load(from: sourceURL)
            let tokenizer = try GGUFTokenizerExport(directory: sourceURL, vocabularySize: config.vocabSize)
            print("tokenizer.ggml.pre \(tokenizer.preTokenizerName): \(tokenizer.preTokenizerSource)")
            types = try HuggingFaceGGUF.convert(directory: sourceURL, to: outputURL, as: fileType, tokenizer: tokenizer.metadata)
        } else {
            types = try GGUFQuantization.quantize(GGUFFile(url: sourceURL), to: outputURL, as: fileType)
        }
        let counts = Dictionary(grouping: types.values, by: \.name).map { "\($0.value.count) \($0.key)" }.sorted()
        let size = (try? FileManager.default.attributesOfItem(atPath: written)[.size] as? Int) ?? 0
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        print(
            "\(written): \(types.count) tensors (\(counts.joined(separator: ", "))), "
                + String(format: "%.1f MB, %.1f s", Double(size) / 1e6, seconds))
    }
}
