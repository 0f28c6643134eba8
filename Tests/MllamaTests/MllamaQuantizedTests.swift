import Foundation
import Kernels
import ModelFormats
import ModelTestSupport
import Testing

@testable import Models

/// A Llama 3.2 Vision checkpoint quantized into stagebeam's own layout (`HuggingFaceQuantized`),
/// against transformers running the same checkpoint with the written weights de-quantized
/// (scripts/fixtures/make_mllama_quantized_fixtures.py, which also checks that the written blocks
/// are gguf-py's and that the other tensors keep their bytes). The fixture's text decoder is 256
/// wide, so every projection, lm_head and the token embedding are quantized; the vision encoder
/// stays bf16.
@Suite struct MllamaQuantizedTests {
    static let name = "mllama-quantized"

    /// What reference.json records of each quantized file.
    struct Quantized: Decodable {
        struct Prompt: Decodable {
            let greedy_ids: [Int]
            /// The reference's top-1 minus top-2 logit at each greedy step.
            let greedy_margins: [Float]
        }
        let tensor_types: [String: String]
        let image: Prompt
        let text: Prompt
    }

    static func quantizedReference(_ type: String) throws -> Quantized {
        struct File: Decodable { let quantized: [String: Quantized] }
        let url = MllamaFixture.directory(name).appendingPathComponent("reference.json")
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).quantized[type.lowercased()]!
    }

    /// The fixture quantized as `type` into a new temporary directory (removed by the caller).
    static func quantize(_ type: String) throws -> URL {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("mllama-\(type)-\(UUID().uuidString)")
        try HuggingFaceQuantized.write(
            directory: MllamaFixture.directory(name), to: output, as: GGUFQuantization.fileType(named: type)!)
        return output
    }

    /// Largest |Δlogit| of both prompts against the reference's `<type>-{image,text}-logits.f32`; the
    /// greedy ids of both are the reference's up to a step where the reference's top-2 margin is
    /// inside `tolerance`, and the same after it only if the choice there was the same.
    static func compare(_ model: MllamaModel, type: String, tolerance: Float) throws -> Float {
        let f = try MllamaFixture.load(name), expected = try quantizedReference(type)
        let image = try model.context(
            promptIds: f.image.input_ids, image: model.imageStates(imageData: MllamaFixture.imageBytes(f.image.image!)))
        var worst: Float = 0
        for (prompt, ids, context) in [("image", f.image.input_ids, image), ("text", f.text.input_ids, nil)] {
            let logits = try MllamaModelTests.logits(model, ids, image: context)
            worst = max(worst, maxDifference(logits, try f.logits(name, "\(type.lowercased())-\(prompt)")))
        }
        for (prompt, ids, context, reference) in [
            ("image", f.image.input_ids, image, expected.image), ("text", f.text.input_ids, nil, expected.text)
        ] {
            let ours = try greedy(model, ids, image: context, count: reference.greedy_ids.count)
            if let step = ours.indices.first(where: { ours[$0] != reference.greedy_ids[$0] }) {
                #expect(
                    reference.greedy_margins[step] < tolerance,
                    "\(type) \(prompt): step \(step) chose \(ours[step]), the reference \(reference.greedy_ids[step]) by a margin of \(reference.greedy_margins[step])"
                )
            }
        }
        return worst
    }

    /// With the stored blocks widened to f32 (ggml's de-quantization) before use, the model is
    /// transformers' arithmetic on transformers' weights: the layout is read as it was written.
    @Test(arguments: ["Q8_0", "Q4_0", "Q4_K_M"])
    func dequantizedWeightsGiveTransformersLogits(type: String) throws {
        let output = try Self.quantize(type)
        defer { try? FileManager.default.removeItem(at: output) }
        let file = try GGUFFile(url: output.appendingPathComponent(HuggingFaceQuantized.weightsFileName))
        let expected = try Self.quantizedReference(type)
        #expect(
            Dictionary(uniqueKeysWithValues: file.tensorNames.map { ($0, file.tensors[$0]!.type.name.uppercased()) })
                == expected.tensor_types.mapValues { $0.uppercased() })
        let model = try MllamaModel(
            directory: output, checkpoint: DequantizedWeights(GGUFWeights(file: file, naming: .huggingFace)), maxRows: 64,
            maxLogitRows: 64, pool: .shared)
        let worst = try Self.compare(model, type: type, tolerance: 1e-4)
        #expect(worst < 1e-4, "\(type): max |Δlogit| \(worst)")
    }

    /// The quantized kernels (activations rounded to int8 per 32-block, as llama.cpp rounds them)
    /// move these logits, which span about 1, by 0.081 (Q8_0), 0.071 (Q4_0) and 0.077 (Q4_K_M)
    /// where the de-quantized weights alone stay within 5e-6 (above); 0.15 bounds it, and greedy
    /// choices may differ only where the reference's top-2 margin is inside it.
    @Test(arguments: ["Q8_0", "Q4_0", "Q4_K_M"])
    func quantizedCheckpointMatchesTransformers(type: String) throws {
        let output = try Self.quantize(type)
        defer { try? FileManager.default.removeItem(at: output) }
        let model = try MllamaModel.load(directory: output, maxRows: 64, maxLogitRows: 64)
        #expect(model.text.weights.layers[0].gate.element == ["Q8_0": .q8_0, "Q4_0": .q4_0, "Q4_K_M": .q4_K][type])
        let worst = try Self.compare(model, type: type, tolerance: 0.15)
        #expect(worst < 0.15, "\(type): max |Δlogit| \(worst)")
    }

    /// The copied files are the checkpoint's (byte for byte) and nothing else but model.gguf; an
    /// existing output that is not an empty directory, and checkpoints of other architectures, are
    /// refused with the reason.
    @Test func writesANewDirectoryWithTheCheckpointsFiles() throws {
        let output = try Self.quantize("Q8_0")
        defer { try? FileManager.default.removeItem(at: output) }
        let fm = FileManager.default, source = MllamaFixture.directory(Self.name)
        let copied = try fm.contentsOfDirectory(atPath: output.path).filter { $0 != HuggingFaceQuantized.weightsFileName }.sorted()
        #expect(copied == (try fm.contentsOfDirectory(atPath: source.path).filter { !$0.hasSuffix(".safetensors") }.sorted()))
        for file in copied {
            #expect(
                fm.contents(atPath: output.appendingPathComponent(file).path)
                    == fm.contents(atPath: source.appendingPathComponent(file).path))
        }
        #expect {
            try HuggingFaceQuantized.write(directory: source, to: output, as: .pure(.q8_0))
        } throws: { ($0 as? ModelFormatError)?.message.contains("is not an empty directory") == true }
        let llava = MllamaFixture.root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("models/stagebeam-shapes")
        #expect(try !HuggingFaceQuantized.accepts(llava))
        #expect {
            try HuggingFaceQuantized.write(directory: llava, to: output.appendingPathComponent("llava"), as: .pure(.q8_0))
        } throws: { ($0 as? ModelFormatError)?.code == .unsupportedArchitecture }
    }
}
