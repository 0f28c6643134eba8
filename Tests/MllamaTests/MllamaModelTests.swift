import Foundation
import Testing
import Vision

@testable import Models

/// Llama 3.2 Vision against transformers on tiny random checkpoints: 4 tiles of 28 px (a wide image on
/// 3 of them) with cross-attention at layers 1 and 3; 3 tiles of 30 px (a tall image), cross-attention
/// at 0 and 2, llama3 RoPE, the `model.`-prefixed layout; bf16 weights, 2 tiles (one of them padding),
/// cross-attention at 2; bf16 weights with a 256-wide text decoder (the fixture of the quantized
/// layout, `MllamaQuantizedTests`). Each has an image prompt (tokens before `<|image|>`
/// included) and a text-only one.
@Suite struct MllamaModelTests {
    static let names = MllamaFixture.models

    static func model(_ name: String, maxRows: Int = 64) throws -> MllamaModel {
        try MllamaModel.load(directory: MllamaFixture.directory(name), maxRows: maxRows, maxLogitRows: 64)
    }

    /// All-position logits of a prompt run in one pass.
    static func logits(_ model: MllamaModel, _ ids: [Int], image: MllamaImageContext?, cache type: KVCacheType = .f32) throws
        -> [Float]
    {
        let cache = model.text.makeCache(capacityTokens: 128, type: type)
        let sequence = cache.createSequence()
        let start = try cache.append(sequence, count: ids.count)
        var batch = ForwardBatch(capacity: ids.count)
        for (p, id) in ids.enumerated() { batch.append(token: id, sequence: sequence, position: start + p, wantsLogits: true) }
        return Array(try model.text.forward(batch, cache: cache, image: image))
    }

    @Test(arguments: names)
    func tilesOfThePromptImageMatchProcessor(_ name: String) throws {
        let f = try MllamaFixture.load(name), model = try Self.model(name)
        let tiles = try model.preprocessor(MllamaFixture.imageBytes(f.image.image!))
        let reference = try f.referenceTiles(name)
        #expect(tiles.aspectRatioId == reference.aspectRatioId && tiles.tileCount == reference.tileCount)
        #expect(tiles.values == reference.values, "\(name): worst pixel difference \(maxDifference(tiles.values, reference.values))")
    }

    @Test(arguments: names)
    func visionStatesMatchTransformers(_ name: String) throws {
        let f = try MllamaFixture.load(name), model = try Self.model(name)
        let states = try model.visionStates(for: f.referenceTiles(name))
        let reference = try MllamaFixture.floats(MllamaFixture.directory(name).appendingPathComponent("cross-attention-states.f32"))
        #expect(f.image.cross_attention_states_shape! == [model.vision.outputRows, model.config.textConfig.hiddenSize])
        #expect(maxDifference(states, reference) < 1e-4, "\(name): max |Δ cross_attention_states| \(maxDifference(states, reference))")
    }

    /// The processor's cross_attention_mask is what `MllamaImageContext` derives from the image token's
    /// position and the tile count: a token attends to the image's tiles from `<|image|>` on.
    @Test(arguments: names)
    func crossAttentionMaskFollowsTheImageToken(_ name: String) throws {
        let f = try MllamaFixture.load(name), model = try Self.model(name)
        let image = try model.imageStates(for: f.referenceTiles(name))
        let context = try #require(try model.context(promptIds: f.image.input_ids, image: image))
        let tiles = f.image.aspect_ratio_mask!.count
        let expected = f.image.input_ids.indices.map { p in
            (0..<tiles).map { t in p >= context.imagePosition && t < image.tileCount ? 1 : 0 }
        }
        #expect(expected == f.image.cross_attention_mask!)
        #expect(context.imagePosition > 0, "the fixture prompt has tokens before <|image|>")
    }

    @Test(arguments: names)
    func imagePromptLogitsMatchTransformers(_ name: String) throws {
        let f = try MllamaFixture.load(name), model = try Self.model(name)
        let image = try model.imageStates(for: f.referenceTiles(name))
        let logits = try Self.logits(model, f.image.input_ids, image: model.context(promptIds: f.image.input_ids, image: image))
        let reference = try f.logits(name, "image")
        #expect(f.image.logits_shape! == [f.image.input_ids.count, model.text.vocabularySize])
        #expect(maxDifference(logits, reference) < 1e-4, "\(name): max |Δlogit| \(maxDifference(logits, reference))")
    }

    @Test(arguments: names)
    func textOnlyLogitsMatchTransformers(_ name: String) throws {
        let f = try MllamaFixture.load(name), model = try Self.model(name)
        #expect(try model.context(promptIds: f.text.input_ids, image: nil) == nil)
        let logits = try Self.logits(model, f.text.input_ids, image: nil)
        let reference = try f.logits(name, "text")
        #expect(maxDifference(logits, reference) < 1e-4, "\(name): max |Δlogit| \(maxDifference(logits, reference))")
    }

    /// Greedy ids of both prompts; the image prompt from the reference tiles and from the PNG decoded
    /// and tiled here.
    @Test(arguments: names)
    func greedyIdsMatchTransformers(_ name: String) throws {
        let f = try MllamaFixture.load(name), model = try Self.model(name)
        #expect(try greedy(model, f.text.input_ids, image: nil, count: f.text.greedy_ids.count) == f.text.greedy_ids, "\(name) text")
        for states in [
            try model.imageStates(for: f.referenceTiles(name)), try model.imageStates(imageData: MllamaFixture.imageBytes(f.image.image!))
        ] {
            let context = try model.context(promptIds: f.image.input_ids, image: states)
            #expect(
                try greedy(model, f.image.input_ids, image: context, count: f.image.greedy_ids.count) == f.image.greedy_ids, "\(name) image"
            )
        }
    }

    /// With an f16 KV cache (`--kv-type f16`, keys and values rounded once when stored) the logits of
    /// both prompts stay within 0.01 of transformers' f32 ones and greedy decoding gives the same ids,
    /// as for the Llama fixtures (`LlamaModelTests.halfCacheStaysCloseToTransformers`).
    @Test(arguments: names)
    func halfCacheStaysCloseToTransformers(_ name: String) throws {
        let f = try MllamaFixture.load(name), model = try Self.model(name)
        let image = try model.context(promptIds: f.image.input_ids, image: model.imageStates(for: f.referenceTiles(name)))
        for (prompt, ids, context, expected) in [
            ("image", f.image.input_ids, image, f.image.greedy_ids), ("text", f.text.input_ids, nil, f.text.greedy_ids)
        ] {
            let logits = try Self.logits(model, ids, image: context, cache: .f16)
            let worst = maxDifference(logits, try f.logits(name, prompt))
            #expect(worst < 1e-2, "\(name) \(prompt): max |Δlogit| \(worst) with an f16 cache")
            #expect(try greedy(model, ids, image: context, count: expected.count, cache: .f16) == expected, "\(name) \(prompt)")
        }
    }

    /// Candidates forked from one image prefix, decoded together in one batch over the shared image
    /// states, give exactly the logits each gives alone (with either KV cache): the image is encoded
    /// once for all of them.
    @Test(arguments: KVCacheType.allCases)
    func forkedCandidatesShareTheImageAndDecodeBatchInvariant(cache type: KVCacheType) throws {
        let name = "mllama-tiles4"
        let f = try MllamaFixture.load(name), model = try Self.model(name)
        let context = try model.context(promptIds: f.image.input_ids, image: model.imageStates(for: f.referenceTiles(name)))
        let cache = model.text.makeCache(capacityTokens: 256, type: type)
        let prefix = cache.createSequence()
        _ = try model.prefill(
            f.image.input_ids, image: context, sequence: prefix, firstPosition: cache.append(prefix, count: f.image.input_ids.count),
            cache: cache)
        let next = [7, 42, 199]
        let candidates = next.map { _ in cache.fork(prefix) }
        var batch = ForwardBatch(capacity: 3)
        for (sequence, token) in zip(candidates, next) {
            batch.append(token: token, sequence: sequence, position: try cache.append(sequence, count: 1), wantsLogits: true)
        }
        let together = Array(try model.text.forward(batch, cache: cache, image: context))
        let vocabulary = model.text.vocabularySize
        for (i, token) in next.enumerated() {
            let alone = cache.fork(prefix)
            batch.removeAll()
            batch.append(token: token, sequence: alone, position: try cache.append(alone, count: 1), wantsLogits: true)
            let single = Array(try model.text.forward(batch, cache: cache, image: context))
            #expect(single == Array(together[(i * vocabulary)..<((i + 1) * vocabulary)]))
        }
    }

    /// A prompt prefilled in chunks (the image token in the second chunk) ends on the same logits as one pass.
    @Test func chunkedPrefillEqualsOnePass() throws {
        let name = "mllama-tiles3-llama3rope"
        let f = try MllamaFixture.load(name)
        func last(_ model: MllamaModel) throws -> [Float] {
            let context = try model.context(promptIds: f.image.input_ids, image: model.imageStates(for: f.referenceTiles(name)))
            let cache = model.text.makeCache(capacityTokens: 128)
            let sequence = cache.createSequence()
            return try model.prefill(
                f.image.input_ids, image: context, sequence: sequence,
                firstPosition: cache.append(sequence, count: f.image.input_ids.count), cache: cache)
        }
        #expect(try last(Self.model(name, maxRows: 5)) == last(Self.model(name)))
    }

    /// The bf16 checkpoint is served from its mapped bf16 weights (half of f32's bytes), not a widened copy.
    @Test func bf16WeightsStayBf16() throws {
        let model = try Self.model("mllama-tiles2-bf16")
        let matrices =
            [
                model.text.weights.embedding, model.text.weights.lmHead, model.projector, model.vision.weights.patch,
                model.vision.weights.tilePositions
            ]
            + model.text.weights.layers.flatMap { [$0.gate, $0.up, $0.down] }
            + model.vision.weights.local.flatMap { [$0.q, $0.fc1] }
        #expect(matrices.allSatisfy { $0.element == .bf16 })
        let f32 = try Self.model("mllama-tiles4")
        #expect(f32.text.weights.lmHead.element == .f32)
    }

    @Test func promptAndImageMustAgree() throws {
        let name = "mllama-tiles4"
        let f = try MllamaFixture.load(name), model = try Self.model(name)
        let image = try model.imageStates(for: f.referenceTiles(name))
        #expect { try model.context(promptIds: f.text.input_ids, image: image) } throws: { "\($0)".contains("no <|image|> token") }
        #expect { try model.context(promptIds: f.image.input_ids, image: nil) } throws: { "\($0)".contains("no image was given") }
        #expect { try model.context(promptIds: f.image.input_ids + f.image.input_ids, image: image) } throws: {
            "\($0)".contains("2 <|image|> tokens")
        }
    }

    @Test func badInputsAreNamed() throws {
        let name = "mllama-tiles4"
        let f = try MllamaFixture.load(name), model = try Self.model(name)
        let embeddingRows = model.text.vocabularySize + 8
        #expect { try Self.logits(model, [1, embeddingRows], image: nil) } throws: { "\($0)".contains("token id \(embeddingRows)") }
        // The image token is an embedding row past lm_head's vocabulary, and a valid input.
        #expect(f.image_token_id == model.text.vocabularySize)
        // Tiles made for another tile count or size.
        let other = try MllamaFixture.load("mllama-tiles3-llama3rope").referenceTiles("mllama-tiles3-llama3rope")
        #expect { try model.imageStates(for: other) } throws: { "\($0)".contains("3 tiles of 30 px") }
        // States of another model's image.
        let otherModel = try Self.model("mllama-tiles3-llama3rope")
        let foreign = try otherModel.context(promptIds: f.image.input_ids, image: otherModel.imageStates(for: other))
        #expect { try Self.logits(model, f.image.input_ids, image: foreign) } throws: { "\($0)".contains("another model") }
        #expect { try model.imageStates(imageData: Data("not an image".utf8)) } throws: { ($0 as? VisionError)?.code == .notAnImage }
    }
}

/// Greedy decoding: prefill, then one token at a time with the same image context.
func greedy(_ model: MllamaModel, _ ids: [Int], image: MllamaImageContext?, count: Int, cache type: KVCacheType = .f32) throws
    -> [Int]
{
    let cache = model.text.makeCache(capacityTokens: 128, type: type)
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
