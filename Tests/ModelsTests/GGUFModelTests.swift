import Foundation
import Kernels
import ModelFormats
import ModelTestSupport
import Testing

@testable import Models

/// Decoders read from GGUF files against transformers loading the same files
/// (scripts/fixtures/make_gguf_fixtures.py): transformers de-quantizes every tensor to f32 and
/// un-permutes llama's Q/K rows; the engine uses the tensors where they lie and rotates neighbours.
@Suite struct GGUFModelTests {
    struct Reference: Decodable {
        struct Prompt: Decodable {
            let text: String
            let input_ids: [Int]
            let logit_positions: [Int]
            let logits: [[Float]]
            let greedy_ids: [Int]
            let greedy_margins: [Float]
        }
        let tensor_types: [String: String]
        let prompts: [Prompt]
    }

    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/gguf")

    /// `dequantized`: every matrix widened to f32 first (the reference's arithmetic exactly).
    static func load(_ name: String, dequantized: Bool = false) throws -> (LlamaModel, Reference) {
        let file = try GGUFFile(url: root.appendingPathComponent(name + ".gguf"))
        let model: LlamaModel
        if dequantized {
            let config = try TextModelConfig(gguf: file)
            model = try LlamaModel(
                config: config, checkpoint: DequantizedWeights(GGUFWeights(file: file)),
                ropeLayout: config.modelType == "llama" ? .interleaved : .rotateHalf,
                maxRows: 64, maxLogitRows: 64)
        } else {
            model = try LlamaModel(gguf: file, maxRows: 64, maxLogitRows: 64)
        }
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: root.appendingPathComponent(name + ".json")))
        return (model, reference)
    }

    /// Largest |Δlogit| over the reference's positions of every prompt.
    static func worstLogitError(_ model: LlamaModel, _ reference: Reference) throws -> Float {
        let cache = model.makeCache(capacityTokens: 256)
        var worst: Float = 0
        for prompt in reference.prompts {
            let sequence = cache.createSequence()
            defer { cache.release(sequence) }
            let start = try cache.append(sequence, count: prompt.input_ids.count)
            var batch = ForwardBatch(capacity: prompt.input_ids.count)
            for (i, token) in prompt.input_ids.enumerated() {
                batch.append(token: token, sequence: sequence, position: start + i, wantsLogits: prompt.logit_positions.contains(i))
            }
            let logits = try model.forward(batch, cache: cache)
            for (row, expected) in prompt.logits.enumerated() {
                for (j, value) in expected.enumerated() { worst = max(worst, abs(logits[row * model.vocabularySize + j] - value)) }
            }
        }
        return worst
    }

    /// Greedy ids of each prompt; a step may differ from the reference only where the reference's
    /// top-2 margin is within `tolerance` (the tie could go either way), and then the rest is not compared.
    static func checkGreedy(_ model: LlamaModel, _ reference: Reference, tolerance: Float, _ name: String) throws {
        let cache = model.makeCache(capacityTokens: 256)
        for prompt in reference.prompts {
            let sequence = cache.createSequence()
            defer { cache.release(sequence) }
            var tokens = prompt.input_ids
            var position = 0
            for step in 0..<prompt.greedy_ids.count {
                let fresh = tokens[position...]
                let start = try cache.append(sequence, count: fresh.count)
                var batch = ForwardBatch(capacity: fresh.count)
                for (i, token) in fresh.enumerated() {
                    batch.append(token: token, sequence: sequence, position: start + i, wantsLogits: i == fresh.count - 1)
                }
                let logits = try model.forward(batch, cache: cache)
                let next = (0..<model.vocabularySize).max { logits[$0] < logits[$1] }!
                position = tokens.count
                tokens.append(next)
                if next != prompt.greedy_ids[step] {
                    #expect(
                        prompt.greedy_margins[step] < tolerance,
                        "\(name) \(prompt.text.debugDescription): step \(step) chose \(next), reference \(prompt.greedy_ids[step]) with margin \(prompt.greedy_margins[step])"
                    )
                    break
                }
            }
        }
    }

    /// Unquantized files: f32 math on the same weights as the reference, so the f32 tolerance of the
    /// safetensors fixtures holds (f16 weights are widened exactly, as torch widens them).
    @Test(arguments: ["llama-f32", "qwen2-f16"])
    func unquantizedFilesMatchTransformers(name: String) throws {
        let (model, reference) = try Self.load(name)
        let worst = try Self.worstLogitError(model, reference)
        #expect(worst < 1e-4, "\(name): max |Δlogit| \(worst)")
        try Self.checkGreedy(model, reference, tolerance: 1e-4, name)
    }

    @Test func tensorsAreUsedWhereTheyLie() throws {
        let file = try GGUFFile(url: Self.root.appendingPathComponent("llama-f32.gguf"))
        let model = try LlamaModel(gguf: file, maxRows: 8, maxLogitRows: 8)
        // The weights the model reads are the file's tensors: nothing but the (f32) file is counted.
        let fileTensorBytes = file.tensors.values.reduce(0) { $0 + $1.byteRange.count }
        #expect(model.weightBytes == fileTensorBytes)
        #expect(!model.config.tieWordEmbeddings)
    }
}

extension GGUFModelTests {
    /// The blocks are read as ggml lays them out: de-quantized to f32, the model is the reference's
    /// arithmetic on the reference's weights, to the f32 tolerance.
    @Test(arguments: ["llama-q8_0", "llama-q4_0", "llama-q4_k_m", "qwen2-q4_1", "qwen2-q5_0", "qwen2-q5_1", "qwen2-q5_k"])
    func quantizedBlocksDecodeToTheReferenceWeights(name: String) throws {
        let (model, reference) = try Self.load(name, dequantized: true)
        let worst = try Self.worstLogitError(model, reference)
        #expect(worst < 1e-4, "\(name): max |Δlogit| \(worst)")
    }

    /// The quantized kernels round each 32-value block of activations to int8 (as llama.cpp does),
    /// which the reference does not: on these files that moves logits by at most 0.155 (measured
    /// 0.115–0.155 over the seven files; logits span about 7 here) while the de-quantized weights
    /// alone stay within 1e-4 (above). 0.25 bounds it with headroom, and greedy choices may differ
    /// only where the reference's top-2 margin is inside it.
    static let activationRoundingTolerance: Float = 0.25

    @Test(arguments: ["llama-q8_0", "llama-q4_0", "llama-q4_k_m", "qwen2-q4_1", "qwen2-q5_0", "qwen2-q5_1", "qwen2-q5_k"])
    func quantizedFilesMatchTransformers(name: String) throws {
        let (model, reference) = try Self.load(name)
        let worst = try Self.worstLogitError(model, reference)
        #expect(worst < Self.activationRoundingTolerance, "\(name): max |Δlogit| \(worst)")
        try Self.checkGreedy(model, reference, tolerance: Self.activationRoundingTolerance, name)
    }
}

extension GGUFModelTests {
    /// llama3-style RoPE scaling as llama.cpp's converter stores it (`rope_freqs.weight`, no metadata
    /// key) against transformers running the Hugging Face checkpoint with that `rope_scaling`
    /// (scripts/fixtures/make_rope_fixtures.py; without the scaling the logits move by 0.63).
    @Test func llama3RopeFrequenciesMatchTransformers() throws {
        let (model, reference) = try Self.load("llama-llama3-rope")
        guard case .frequencyDivisors(let divisors) = model.rope.scaling else {
            Issue.record("rope_freqs.weight was not applied")
            return
        }
        #expect(divisors.first == 1 && divisors.last == 8, "\(divisors)")
        let worst = try Self.worstLogitError(model, reference)
        #expect(worst < 1e-4, "max |Δlogit| \(worst)")
        try Self.checkGreedy(model, reference, tolerance: 1e-4, "llama-llama3-rope")
    }

    /// `stagebeam quantize` from the f32 file gives, tensor for tensor, the bytes gguf-py's
    /// quantizers wrote into the q8_0 and q4_0 fixtures (from the same f32 weights), keeps the
    /// metadata, and the written file loads and answers as that fixture does against transformers.
    @Test(arguments: [("Q8_0", "llama-q8_0"), ("Q4_0", "llama-q4_0")])
    func quantizingTheF32FileGivesGgufPyBlocks(type: String, fixture: String) throws {
        let source = try GGUFFile(url: Self.root.appendingPathComponent("llama-f32.gguf"))
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("quantized-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: output) }
        let types = try GGUFQuantization.quantize(source, to: output, as: GGUFQuantization.fileType(named: type)!)
        let written = try GGUFFile(url: output), expected = try GGUFFile(url: Self.root.appendingPathComponent(fixture + ".gguf"))
        #expect(written.tensorNames == source.tensorNames)
        for name in expected.tensorNames {
            let (a, b) = (written.tensors[name]!, expected.tensors[name]!)
            #expect(a.type == b.type && a.dimensions == b.dimensions, "\(name)")
            #expect(Array(written.bytes(of: a)) == Array(expected.bytes(of: b)), "\(name): blocks differ from gguf-py's")
            #expect(types[name] == a.type)
        }
        for key in source.metadataKeys where key != "general.file_type" { #expect(written.metadata[key] == source.metadata[key], "\(key)") }
        #expect(written.metadata["general.file_type"]?.integer == (type == "Q8_0" ? 7 : 2))

        let model = try LlamaModel(gguf: written, maxRows: 64, maxLogitRows: 64)
        let reference = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: Self.root.appendingPathComponent(fixture + ".json")))
        let worst = try Self.worstLogitError(model, reference)
        #expect(worst < Self.activationRoundingTolerance, "max |Δlogit| \(worst)")
    }

    /// K-quant types on rows that are not whole 256-value super-blocks fall back as llama-quantize's do.
    @Test func kQuantFallbacks() {
        #expect(GGUFQuantization.stored(.q4_K, columns: 256) == .q4_K)
        #expect(GGUFQuantization.stored(.q4_K, columns: 96) == .q5_0)
        #expect(GGUFQuantization.stored(.q5_K, columns: 96) == .q5_1)
        #expect(GGUFQuantization.stored(.q6_K, columns: 96) == .q8_0)
        #expect(GGUFQuantization.stored(.q8_0, columns: 40) == .f16)
    }
}

extension GGUFModelTests {
    /// YaRN from `qwen2.rope.scaling.type` / `.factor` / `.original_context_length` against
    /// transformers running the checkpoint with that `rope_scaling` (make_rope_fixtures.py).
    @Test func yarnRopeScalingMatchesTransformers() throws {
        let (model, reference) = try Self.load("qwen2-yarn-rope")
        #expect(model.rope.scaling == .yarn(factor: 4, originalContext: 64, betaFast: 32, betaSlow: 1, attentionFactor: nil))
        #expect(model.rope.attentionScaling > 1)
        let worst = try Self.worstLogitError(model, reference)
        #expect(worst < 1e-4, "max |Δlogit| \(worst)")
        try Self.checkGreedy(model, reference, tolerance: 1e-4, "qwen2-yarn-rope")
    }
}
