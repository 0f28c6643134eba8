import Foundation
import Generation
import Models
import Testing
import Tokenization

/// Images through the generator: LLaVA fixtures (scripts/fixtures/make_vision_fixtures.py).
@Suite struct ImagePromptTests {
    struct Reference: Decodable {
        let image: String
        let prompt: String
        let input_ids: [Int]
        let greedy_ids: [Int]
        /// More `processor(text=prompt, images=load_image(file))` calls: JPEGs, some with an EXIF orientation.
        let cases: [Case]
    }

    struct Case: Decodable {
        let prompt: String
        let image: String
        let input_ids: [Int]
        let greedy_ids: [Int]
    }

    static let vision = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/vision")

    func image(_ name: String) throws -> PromptImage {
        let data = try Data(contentsOf: Self.vision.appendingPathComponent("images/\(name)"))
        return PromptImage(hash: name, data: data) // any stable key will do in a test
    }

    func generator(_ name: String) throws -> (TextGenerator, Reference) {
        let directory = Self.vision.appendingPathComponent(name)
        let llava = try LlavaModel(directory: directory, maxRows: 64, maxLogitRows: 8)
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: directory.appendingPathComponent("reference.json")))
        return (
            TextGenerator(model: llava.language, vision: llava, tokenizer: try Tokenizer(contentsOf: directory), kvCapacityTokens: 2048),
            reference
        )
    }

    /// Tokenize, expand the image token, encode the image bytes, prefill, decode: transformers' ids.
    @Test(arguments: ["llava-clip-llama", "llava-siglip-qwen2"])
    func greedyWithImageEqualsTransformers(model name: String) throws {
        let (generator, reference) = try generator(name)
        let tokens = generator.expandImageTokens(generator.tokenizer.encode(reference.prompt))
        #expect(tokens == reference.input_ids)
        let output = try generator.generate(
            GenerationRequest(
                promptTokens: tokens, images: [try image(reference.image)], seeds: [0],
                sampling: .greedy, maxNewTokens: reference.greedy_ids.count))
        #expect(output.samples[0].tokenIds == reference.greedy_ids)
    }

    /// The image token first or not, with BOS text or without (LlavaProcessor rewrites neither), on JPEGs
    /// decoded and turned upright here: transformers' prompt ids and greedy ids.
    @Test(arguments: ["llava-clip-llama", "llava-siglip-qwen2", "llava-clip-list-full"])
    func processorPromptsOnJPEGsEqualTransformers(model name: String) throws {
        let (generator, reference) = try generator(name)
        #expect(reference.cases.count == 2)
        for c in reference.cases {
            let tokens = generator.processorPromptTokens(c.prompt)
            #expect(tokens == c.input_ids, "\(name): \(c.prompt)")
            let output = try generator.generate(
                GenerationRequest(
                    promptTokens: tokens, images: [try image(c.image)], seeds: [0], sampling: .greedy, maxNewTokens: c.greedy_ids.count))
            #expect(output.samples[0].tokenIds == c.greedy_ids, "\(name): \(c.prompt) on \(c.image)")
        }
    }

    /// The same image reuses its cached prefix; a different image with the same token ids does not.
    @Test func prefixCacheTellsImagesApart() throws {
        let (generator, reference) = try generator("llava-clip-llama")
        let tokens = generator.expandImageTokens(generator.tokenizer.encode(reference.prompt))
        func run(_ file: String) throws -> GenerationOutput {
            try generator.generate(
                GenerationRequest(promptTokens: tokens, images: [try image(file)], seeds: [0], sampling: .greedy, maxNewTokens: 4))
        }
        let first = try run(reference.image)
        let same = try run(reference.image)
        #expect(same.timings.cachedPromptTokens == tokens.count - 1)
        #expect(same.samples[0].tokenIds == first.samples[0].tokenIds)
        let other = try run("rgb-portrait.png")
        #expect(other.timings.cachedPromptTokens == 0)
    }

    @Test func imagesNeedAVisionModel() throws {
        let text = try ModelFixture.generator("llama-gqa")
        #expect {
            _ = try text.generate(
                GenerationRequest(
                    promptTokens: [1, 2], images: [try image("rgb-portrait.png")], seeds: [0], sampling: .greedy, maxNewTokens: 1))
        } throws: { "\($0)".contains("no vision tower") }
    }

    @Test func corruptImageIsNamedAndTheGeneratorKeepsServing() throws {
        let (generator, reference) = try generator("llava-clip-llama")
        let tokens = generator.expandImageTokens(generator.tokenizer.encode(reference.prompt))
        let garbage = PromptImage(hash: "garbage", data: Data("definitely not a png".utf8))
        #expect {
            _ = try generator.generate(
                GenerationRequest(promptTokens: tokens, images: [garbage], seeds: [0], sampling: .greedy, maxNewTokens: 1))
        } throws: { "\($0)".lowercased().contains("image") }
        let fine = try generator.generate(
            GenerationRequest(promptTokens: tokens, images: [try image(reference.image)], seeds: [0], sampling: .greedy, maxNewTokens: 2))
        #expect(fine.samples[0].tokenIds == Array(reference.greedy_ids.prefix(2)))
    }
}
