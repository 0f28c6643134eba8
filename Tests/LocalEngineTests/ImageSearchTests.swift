import ChatTemplates
import Foundation
import Generation
import Models
import Search
import Testing
import Tokenization

@testable import LocalEngine

/// Stage-level search about an image: candidates and judge both see it.
@Suite struct ImageSearchTests {
    /// A LLaVA-1.5-style template that places the user turn's images (the fixture has none of its own).
    static let template = """
        {% for m in messages %}{{ m['role'].upper() }}: {% if m['content'] is string %}{{ m['content'] }}{% else %}\
        {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %} \
        {% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}
        """

    @Test func searchAboutAnImageIsDeterministicAndImageDependent() async throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
            "Fixtures/vision")
        let directory = fixtures.appendingPathComponent("llava-clip-llama")
        func engine() throws -> (EngineCandidateGenerator, EngineJudge, ImageStore) {
            let llava = try LlavaModel(directory: directory, maxRows: 64, maxLogitRows: 8)
            let tokenizer = try Tokenizer(contentsOf: directory)
            let generator = TextGenerator(model: llava.language, vision: llava, tokenizer: tokenizer, kvCapacityTokens: 8192)
            let executor = EngineExecutor(generator: generator)
            let prompt = try ChatPrompt(tokenizer: tokenizer, template: ChatTemplate(source: Self.template))
            let images = ImageStore()
            for name in ["rgb-landscape.png", "rgb-portrait.png"] {
                images.put(try Data(contentsOf: fixtures.appendingPathComponent("images/\(name)")), hash: name)
            }
            let eos = generator.eosTokenIds(generationConfig: nil)
            return (
                EngineCandidateGenerator(executor: executor, prompt: prompt, stopTokenIds: eos, images: images),
                EngineJudge(executor: executor, prompt: prompt, stopTokenIds: eos, images: images), images
            )
        }
        var config = SearchConfig()
        config.beam = 2
        config.maxStageTokens = 8
        config.seed = 3
        let (generator, judge, _) = try engine()
        let search = try StageBeamSearch(generator: generator, judge: judge, config: config)
        let landscape = try await search.run(question: "What is shown?", imageRef: "rgb-landscape.png")
        #expect(landscape.stages.count == 4 && landscape.counts.judgeCalls + landscape.counts.undecidedMatches == 4)
        let portrait = try await search.run(question: "What is shown?", imageRef: "rgb-portrait.png")
        #expect(portrait.text != landscape.text, "the answer depends on the image")
        let (freshGenerator, freshJudge, _) = try engine()
        let again = try await StageBeamSearch(generator: freshGenerator, judge: freshJudge, config: config)
            .run(question: "What is shown?", imageRef: "rgb-landscape.png")
        #expect(again.text == landscape.text)
        await #expect(throws: LocalEngineError.self) { _ = try await search.run(question: "?", imageRef: "missing") }
    }
}

@Suite struct ImageStoreTests {
    /// Each put is one user; the bytes go when the last user releases them.
    @Test func releasedByItsLastUser() throws {
        let store = ImageStore()
        store.put(Data([1, 2, 3]), hash: "h")
        store.put(Data([1, 2, 3]), hash: "h")
        store.release("h")
        #expect(try store.images(for: "h").first?.data == Data([1, 2, 3]))
        store.release("h")
        #expect(throws: LocalEngineError.self) { try store.images(for: "h") }
        #expect(try store.images(for: nil).isEmpty)
    }
}
