import Foundation
import Models
import Testing
import Vision

/// LLaVA against transformers on tiny random checkpoints: CLIP + Llama (layer -2, class token
/// dropped, transformers 5 file layout), SigLIP + Qwen2 (layers [-3, -1], full, tied head,
/// `model.`-prefixed layout), CLIP with erf GELU (layers [0, -1], full, bf16, llava-hf hub layout).
@Suite struct LlavaModelTests {
    static let names = LlavaFixture.names

    static func model(_ name: String) throws -> LlavaModel {
        try LlavaModel.load(directory: LlavaFixture.directory(name), maxRows: 64, maxLogitRows: 64)
    }

    static func referencePixels(_ f: LlavaFixture) -> PreprocessedImage {
        PreprocessedImage(height: f.pixel_shape[1], width: f.pixel_shape[2], values: f.pixel_values)
    }

    @Test(arguments: names)
    func promptExpansionMatchesProcessor(_ name: String) throws {
        let f = try LlavaFixture.load(name), model = try Self.model(name)
        #expect(model.imageTokenId == f.image_token_id)
        #expect(model.expandImageTokens(f.unexpanded_ids) == f.input_ids)
    }

    @Test(arguments: names)
    func pixelValuesMatchProcessor(_ name: String) throws {
        let f = try LlavaFixture.load(name), model = try Self.model(name)
        let pixels = try model.preprocessor(f.imageBytes())
        #expect([3, pixels.height, pixels.width] == f.pixel_shape)
        // PNG and JPEG alike: decoded as Pillow decodes, resampled as Pillow resamples, bit for bit.
        #expect(pixels.values == f.pixel_values, "\(name): \(zip(pixels.values, f.pixel_values).filter { $0 != $1 }.count) values differ")
    }

    @Test(arguments: names)
    func imageFeaturesMatchTransformers(_ name: String) throws {
        let f = try LlavaFixture.load(name), model = try Self.model(name)
        let features = try model.imageFeatures(for: Self.referencePixels(f))
        try #require(features.rows == f.image_features.count && features.width == f.image_features[0].count)
        var worst: Float = 0
        for (r, row) in f.image_features.enumerated() {
            for (j, value) in row.enumerated() { worst = max(worst, abs(features.values[r * features.width + j] - value)) }
        }
        #expect(worst < 1e-4, "\(name): max |Δfeature| \(worst)")
    }

    @Test(arguments: names)
    func logitsMatchTransformers(_ name: String) throws {
        let f = try LlavaFixture.load(name), model = try Self.model(name)
        let features = try model.imageFeatures(for: Self.referencePixels(f))
        let worst = try logitError(model, ids: f.input_ids, features: features, expected: f.logits)
        #expect(worst < 1e-4, "\(name): max |Δlogit| \(worst)")
    }

    /// Greedy ids from the reference pixels, and from the image bytes themselves (decoded and
    /// preprocessed here bit-exactly).
    @Test(arguments: names)
    func greedyIdsMatchTransformers(_ name: String) throws {
        let f = try LlavaFixture.load(name), model = try Self.model(name)
        for features in [try model.imageFeatures(for: Self.referencePixels(f)), try model.imageFeatures(imageData: f.imageBytes())] {
            let prompt = try model.prompt(ids: model.expandImageTokens(f.unexpanded_ids), images: [features])
            #expect(try greedy(model, prompt, count: f.greedy_ids.count) == f.greedy_ids, "\(name)")
        }
    }

    /// A long prompt prefilled in chunks (image rows split across two passes) ends on the same
    /// logits as one pass.
    @Test func chunkedPrefillEqualsOnePass() throws {
        let f = try LlavaFixture.load("llava-clip-llama")
        let whole = try Self.model("llava-clip-llama")
        let chunked = try LlavaModel.load(directory: LlavaFixture.directory("llava-clip-llama"), maxRows: 10, maxLogitRows: 4)
        func last(_ model: LlavaModel) throws -> [Float] {
            let prompt = try model.prompt(ids: f.input_ids, images: [model.imageFeatures(for: Self.referencePixels(f))])
            let cache = model.language.makeCache(capacityTokens: 128)
            let sequence = cache.createSequence()
            return try model.prefill(prompt, sequence: sequence, firstPosition: cache.append(sequence, count: prompt.count), cache: cache)
        }
        #expect(try last(chunked) == last(whole))
    }

    @Test func imageTokenCountMismatchIsAnError() throws {
        let f = try LlavaFixture.load("llava-clip-llama"), model = try Self.model("llava-clip-llama")
        let features = try model.imageFeatures(for: Self.referencePixels(f))
        #expect { try model.prompt(ids: f.unexpanded_ids, images: [features]) } throws: { "\($0)".contains("image tokens") }
        #expect { try model.prompt(ids: f.input_ids, images: []) } throws: { "\($0)".contains("image tokens") }
        #expect { try model.prompt(ids: f.input_ids + f.input_ids, images: [features]) } throws: { "\($0)".contains("image tokens") }
    }

    @Test func wrongPixelSizeIsAnError() throws {
        let model = try Self.model("llava-clip-llama")
        let small = PreprocessedImage(height: 12, width: 12, values: Array(repeating: 0, count: 3 * 12 * 12))
        #expect { try model.imageFeatures(for: small) } throws: { "\($0)".contains("12×12") }
    }

    @Test func badImageBytesAreAVisionError() throws {
        let model = try Self.model("llava-clip-llama")
        #expect { try model.imageFeatures(imageData: Data("not an image".utf8)) } throws: { ($0 as? VisionError)?.code == .notAnImage }
    }
}

/// The largest |logit − expected| over every prompt position, after one prefill of the whole prompt.
func logitError(_ model: LlavaModel, ids: [Int], features: ImageFeatures, expected: [[Float]]) throws -> Float {
    let prompt = try model.prompt(ids: ids, images: [features])
    let cache = model.language.makeCache(capacityTokens: 128)
    let sequence = cache.createSequence()
    let start = try cache.append(sequence, count: prompt.count)
    var batch = ForwardBatch(capacity: prompt.count)
    prompt.append(0..<prompt.count, to: &batch, sequence: sequence, firstPosition: start) { _ in true }
    let logits = try model.language.forward(batch, cache: cache)
    let vocab = model.language.vocabularySize
    var worst: Float = 0
    for (row, values) in expected.enumerated() {
        for (j, value) in values.enumerated() { worst = max(worst, abs(logits[row * vocab + j] - value)) }
    }
    return worst
}

/// Greedy decoding of a multimodal prompt: prefill, then one token at a time. `firstLogits` gets the
/// prefill's logits (the prompt's last position).
func greedy(
    _ model: LlavaModel, _ prompt: MultimodalPrompt, count: Int, capacityTokens: Int = 128,
    firstLogits: (([Float]) -> Void)? = nil
) throws -> [Int] {
    let cache = model.language.makeCache(capacityTokens: capacityTokens)
    let sequence = cache.createSequence()
    var logits = try model.prefill(prompt, sequence: sequence, firstPosition: cache.append(sequence, count: prompt.count), cache: cache)
    firstLogits?(logits)
    var output: [Int] = []
    var batch = ForwardBatch(capacity: 1)
    while output.count < count {
        let next = logits.indices.max { logits[$0] < logits[$1] }!
        output.append(next)
        batch.removeAll()
        batch.append(token: next, sequence: sequence, position: try cache.append(sequence, count: 1), wantsLogits: true)
        logits = Array(try model.language.forward(batch, cache: cache))
    }
    return output
}
