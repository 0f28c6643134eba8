import Foundation
import Kernels
import ModelFormats
import Testing

@testable import Models

/// A Llama 3.2 Vision checkpoint quantized into stagebeam's own layout (`HuggingFaceQuantized`),
/// against transformers running the same checkpoint with the written weights de-quantized
/// (scripts/fixtures/make_mllama_quantized_fixtures.py, which also checks that the written blocks
/// are gguf-py's and that the other tensors keep their bytes). The fixture's text decoder is 256
/// wide, so every projection and lm_head is quantized; the vision encoder stays bf16.
@Suite struct MllamaQuantizedTests {
    struct Reference: Decodable {
        struct Prompt: Decodable {
            let input_ids: [Int]
            let image: String?
        }
        struct Quantized: Decodable {
            struct Prompt: Decodable { let greedy_ids: [Int] }
            let tensor_types: [String: String]
            let image: Prompt
            let text: Prompt
        }
        let image: Prompt
        let text: Prompt
        let quantized: [String: Quantized]
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/mllama")
    static let directory = fixtures.appendingPathComponent("mllama-quantized")

    static func reference() throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: directory.appendingPathComponent("reference.json")))
    }

    /// The fixture quantized as `type` into a new temporary directory (removed by the caller).
    static func quantize(_ type: String) throws -> URL {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("mllama-\(type)-\(UUID().uuidString)")
        try HuggingFaceQuantized.write(directory: directory, to: output, as: GGUFQuantization.fileType(named: type)!)
        return output
    }

    static func floats(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Every position's logits of `ids` run in one pass.
    static func logits(_ model: MllamaModel, _ ids: [Int], image: MllamaImageContext?) throws -> [Float] {
        let cache = model.text.makeCache(capacityTokens: 128)
        let sequence = cache.createSequence()
        let start = try cache.append(sequence, count: ids.count)
        var batch = ForwardBatch(capacity: ids.count)
        for (p, id) in ids.enumerated() { batch.append(token: id, sequence: sequence, position: start + p, wantsLogits: true) }
        return Array(try model.text.forward(batch, cache: cache, image: image))
    }

    /// Greedy ids after `ids`: a plain argmax loop.
    static func greedy(_ model: MllamaModel, _ ids: [Int], image: MllamaImageContext?, count: Int) throws -> [Int] {
        let cache = model.text.makeCache(capacityTokens: 128)
        let sequence = cache.createSequence()
        var logits = try model.prefill(
            ids, image: image, sequence: sequence, firstPosition: cache.append(sequence, count: ids.count), cache: cache)
        var output: [Int] = []
        var batch = ForwardBatch(capacity: 1)
        while output.count < count {
            let next = logits.indices.max { logits[$0] < logits[$1] }!
            output.append(next)
            batch.removeAll()
            batch.append(token: next, sequence: sequence, position: try cache.append(sequence, count: 1), wantsLogits: true)
            logits = Array(try model.text.forward(batch, cache: cache, image: image))
        }
        return output
    }

    /// Largest |Δlogit| of both prompts against the reference's `<type>-{image,text}-logits.f32`,
    /// and the greedy ids of both.
    static func compare(_ model: MllamaModel, type: String) throws -> (worst: Float, image: [Int], text: [Int]) {
        let reference = try reference(), expected = reference.quantized[type.lowercased()]!
        let png = try Data(contentsOf: fixtures.appendingPathComponent("images").appendingPathComponent(reference.image.image!))
        let image = try model.context(promptIds: reference.image.input_ids, image: model.imageStates(imageData: png))
        var worst: Float = 0
        for (prompt, ids, context) in [("image", reference.image.input_ids, image), ("text", reference.text.input_ids, nil)] {
            let logits = try logits(model, ids, image: context)
            let wanted = try floats(directory.appendingPathComponent("\(type.lowercased())-\(prompt)-logits.f32"))
            #expect(logits.count == wanted.count)
            for (a, b) in zip(logits, wanted) { worst = max(worst, abs(a - b)) }
        }
        return (
            worst, try greedy(model, reference.image.input_ids, image: image, count: expected.image.greedy_ids.count),
            try greedy(model, reference.text.input_ids, image: nil, count: expected.text.greedy_ids.count)
        )
    }

    /// With the stored blocks widened to f32 (ggml's de-quantization) before use, the model is
    /// transformers' arithmetic on transformers' weights: the layout is read as it was written.
    @Test(arguments: ["Q8_0", "Q4_0"])
    func dequantizedWeightsGiveTransformersLogits(type: String) throws {
        let output = try Self.quantize(type)
        defer { try? FileManager.default.removeItem(at: output) }
        let file = try GGUFFile(url: output.appendingPathComponent(HuggingFaceQuantized.weightsFileName))
        let expected = try Self.reference().quantized[type.lowercased()]!
        #expect(
            Dictionary(uniqueKeysWithValues: file.tensorNames.map { ($0, file.tensors[$0]!.type.name.uppercased()) })
                == expected.tensor_types.mapValues { $0.uppercased() })
        let model = try MllamaModel(
            directory: output, checkpoint: DequantizedWeights(GGUFWeights(file: file, naming: .huggingFace)), maxRows: 64,
            maxLogitRows: 64, pool: .shared)
        let (worst, image, text) = try Self.compare(model, type: type)
        #expect(worst < 1e-4, "\(type): max |Δlogit| \(worst)")
        #expect(image == expected.image.greedy_ids && text == expected.text.greedy_ids, "\(type)")
    }

    /// The quantized kernels (activations rounded to int8 per 32-block, as llama.cpp rounds them)
    /// move these logits, which span about 1, by 0.077 (Q8_0) and 0.103 (Q4_0) where the
    /// de-quantized weights alone stay within 4e-6 (above); 0.15 bounds it. The greedy ids of both
    /// prompts stay the reference's (its smallest top-2 margin along them: 0.024).
    @Test(arguments: ["Q8_0", "Q4_0"])
    func quantizedCheckpointMatchesTransformers(type: String) throws {
        let output = try Self.quantize(type)
        defer { try? FileManager.default.removeItem(at: output) }
        let model = try MllamaModel(directory: output, maxRows: 64, maxLogitRows: 64)
        #expect(model.text.weights.layers[0].gate.element == (type == "Q8_0" ? .q8_0 : .q4_0))
        let expected = try Self.reference().quantized[type.lowercased()]!
        let (worst, image, text) = try Self.compare(model, type: type)
        #expect(worst < 0.15, "\(type): max |Δlogit| \(worst)")
        #expect(image == expected.image.greedy_ids && text == expected.text.greedy_ids, "\(type)")
    }

    /// The copied files are the checkpoint's (byte for byte) and nothing else but model.gguf; an
    /// existing output that is not an empty directory, and checkpoints of other architectures, are
    /// refused with the reason.
    @Test func writesANewDirectoryWithTheCheckpointsFiles() throws {
        let output = try Self.quantize("Q8_0")
        defer { try? FileManager.default.removeItem(at: output) }
        let fm = FileManager.default
        let copied = try fm.contentsOfDirectory(atPath: output.path).filter { $0 != HuggingFaceQuantized.weightsFileName }.sorted()
        let source = try fm.contentsOfDirectory(atPath: Self.directory.path).filter { !$0.hasSuffix(".safetensors") }.sorted()
        #expect(copied == source)
        for name in copied {
            #expect(
                fm.contents(atPath: output.appendingPathComponent(name).path)
                    == fm.contents(atPath: Self.directory.appendingPathComponent(name).path))
        }
        #expect {
            try HuggingFaceQuantized.write(directory: Self.directory, to: output, as: .pure(.q8_0))
        } throws: { ($0 as? ModelFormatError)?.message.contains("is not an empty directory") == true }
        let llava = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("models/stagebeam-shapes")
        #expect(try !HuggingFaceQuantized.accepts(llava))
        #expect {
            try HuggingFaceQuantized.write(directory: llava, to: output.appendingPathComponent("llava"), as: .pure(.q8_0))
        } throws: { ($0 as? ModelFormatError)?.code == .unsupportedArchitecture }
    }
}
