import ArgumentParser
import Foundation
import ModelFormats
import Models

/// `stagebeam quantize IN.gguf OUT.gguf --type Q4_K`: the model with its matrices in another format.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Write a GGUF model again with its weight matrices quantized (or converted) to another format.",
        discussion: """
            Matrices are decoded to f32 and encoded with quantizers whose bytes equal ggml's reference ones \
            (llama-quantize without an importance matrix); norms and other vectors are copied. A matrix whose \
            rows are not whole 256-value blocks falls back as llama-quantize's does (Q4_K → Q5_0, Q5_K → Q5_1, \
            Q6_K → Q8_0). Formats: \(GGUFQuantization.formats.map(\.name).joined(separator: ", ")).
            """)

    @Argument(help: "The GGUF model to read.")
    var input: String
    @Argument(help: "The GGUF file to write.")
    var output: String
    @Option(help: "The format of the written matrices (e.g. Q8_0, Q4_0, Q4_K).")
    var type: String

    func validate() throws {
        guard GGUFQuantization.format(named: type) != nil else {
            throw ValidationError(
                "unknown --type '\(type)'; known: \(GGUFQuantization.formats.map(\.name).joined(separator: ", "))")
        }
        guard URL(fileURLWithPath: input).standardizedFileURL != URL(fileURLWithPath: output).standardizedFileURL else {
            throw ValidationError("the output must be another file than the input")
        }
    }

    func run() throws {
        let source = URL(fileURLWithPath: input)
        guard source.pathExtension.lowercased() == "gguf" else {
            throw ValidationError("\(input): quantize reads GGUF files; a Hugging Face directory is not supported yet")
        }
        let start = ContinuousClock.now
        let file = try GGUFFile(url: source)
        let types = try GGUFQuantization.quantize(file, to: URL(fileURLWithPath: output), as: GGUFQuantization.format(named: type)!)
        let counts = Dictionary(grouping: types.values, by: \.name).map { "\($0.value.count) \($0.key)" }.sorted()
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        print(
            "\(output): \(types.count) tensors (\(counts.joined(separator: ", "))), "
                + String(format: "%.1f MB, %.1f s", Double(size) / 1e6, seconds))
    }
}
