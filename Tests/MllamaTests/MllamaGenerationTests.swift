import ChatTemplates
import Foundation
import Generation
import Models
import Testing
import Tokenization

/// Llama 3.2 Vision through `TextGenerator`, as `stagebeam generate --raw --image` runs it: the
/// tokenizer's ids of the prompt and the greedy continuation equal transformers'
/// `processor(text=prompt, images=image)` + `generate`.
@Suite struct MllamaGenerationTests {
    static func generator(_ name: String) throws -> TextGenerator {
        let directory = MllamaFixture.directory(name)
        return TextGenerator(
            mllama: try MllamaModel.load(directory: directory, maxRows: 64, maxLogitRows: 8),
            tokenizer: try Tokenizer(contentsOf: directory), kvCapacityTokens: 1024)
    }

    static func request(_ ids: [Int], images: [PromptImage], samples: Int = 1, tokens: Int) -> GenerationRequest {
        GenerationRequest(
            promptTokens: ids, images: images, seeds: (0..<samples).map { UInt64($0) }, sampling: .greedy,
            maxNewTokens: tokens)
    }

    @Test(arguments: MllamaFixture.models)
    func rawImagePromptMatchesProcessorAndGenerate(_ name: String) throws {
        let f = try MllamaFixture.load(name), generator = try Self.generator(name)
        let ids = generator.processorPromptTokens(f.raw.prompt)
        #expect(ids == f.raw.input_ids)
        let image = PromptImage(hash: name, data: try MllamaFixture.imageBytes(f.image.image!))
        // Three greedy samples decode as one batch over the shared prefix; then the same request again,
        // now from the prefix cache and the cached image states.
        for _ in 0..<2 {
            let output = try generator.generate(Self.request(ids, images: [image], samples: 3, tokens: f.raw.greedy_ids.count))
            #expect(output.samples.map(\.tokenIds) == Array(repeating: f.raw.greedy_ids, count: 3), "\(name)")
        }
        // A text-only request after an image one: the cross-attention layers are skipped again.
        let text = try generator.generate(Self.request(f.text.input_ids, images: [], tokens: f.text.greedy_ids.count))
        #expect(text.samples[0].tokenIds == f.text.greedy_ids, "\(name)")
        #expect(generator.takesImages)
    }

    /// Prompts without BOS text: leading `<|image|>` moved before an inserted BOS (then the tokenizer's
    /// own BOS), BOS inserted before other text; the image is a JPEG turned upright by its EXIF orientation.
    @Test(arguments: MllamaFixture.models)
    func rawPromptsWithoutBOSMatchProcessorAndGenerate(_ name: String) throws {
        let f = try MllamaFixture.load(name), generator = try Self.generator(name)
        #expect(f.raw_cases.count == 3)
        for c in f.raw_cases {
            let ids = generator.processorPromptTokens(c.prompt)
            #expect(ids == c.input_ids, "\(name): \(c.prompt)")
            let images = try c.image.map { [PromptImage(hash: $0, data: try MllamaFixture.imageBytes($0))] } ?? []
            let output = try generator.generate(Self.request(ids, images: images, tokens: c.greedy_ids.count))
            #expect(output.samples[0].tokenIds == c.greedy_ids, "\(name): \(c.prompt)")
        }
        let bos = try #require(generator.tokenizer.bosToken)
        let image = f.image_token_id
        #expect(f.raw_cases[0].input_ids.prefix(3) == [f.raw_cases[0].input_ids[0], image, f.raw_cases[0].input_ids[0]])
        // Two leading image tokens both move; BOS text anywhere leaves the prompt as it is.
        let two = generator.processorPromptTokens("<|image|><|image|>Hi")
        #expect(two.prefix(4) == [two[0], image, image, two[0]])
        #expect(generator.processorPromptTokens("<|image|>Hi \(bos)") == generator.tokenizer.encode("<|image|>Hi \(bos)"))
    }

    /// The fixture's chat template (the published model's message layout) writes the image prompt
    /// transformers was run on: `<|image|>` at the start of the user turn, after Llama 3 headers.
    @Test(arguments: MllamaFixture.models)
    func chatTemplatePlacesTheImageToken(_ name: String) throws {
        let f = try MllamaFixture.load(name), generator = try Self.generator(name)
        let template = try #require(generator.tokenizer.chatTemplate)
        let text = try template.render(
            messages: [ChatMessage(role: "user", content: "How many red cubes are there?", imageCount: 1)],
            addGenerationPrompt: true, bosToken: generator.tokenizer.bosToken,
            eosToken: generator.tokenizer.eosToken)
        #expect(text == f.image.prompt)
        let ids = generator.tokenizer.encode(text, addSpecialTokens: false)
        #expect(ids == f.image.input_ids)
        let image = PromptImage(hash: name, data: try MllamaFixture.imageBytes(f.image.image!))
        let output = try generator.generate(Self.request(ids, images: [image], tokens: f.image.greedy_ids.count))
        #expect(output.samples[0].tokenIds == f.image.greedy_ids, "\(name)")
    }

    @Test func imageAndPromptMustAgree() throws {
        let name = "mllama-tiles4"
        let f = try MllamaFixture.load(name), generator = try Self.generator(name)
        let image = PromptImage(hash: name, data: try MllamaFixture.imageBytes(f.image.image!))
        #expect { try generator.generate(Self.request(f.text.input_ids, images: [image], tokens: 2)) } throws: {
            "\($0)".contains("no <|image|> token")
        }
        #expect { try generator.generate(Self.request(f.image.input_ids, images: [], tokens: 2)) } throws: {
            "\($0)".contains("no image was given")
        }
        #expect { try generator.generate(Self.request(f.image.input_ids, images: [image, image], tokens: 2)) } throws: {
            "\($0)".contains("one image per prompt")
        }
    }
}
