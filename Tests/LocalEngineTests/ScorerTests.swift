import ChatTemplates
import Foundation
import Generation
import ModelFormats
import Models
import Search
import Testing
import Tokenization

@testable import LocalEngine

/// The self-reward scorer on the engine: KV reuse, batching, and an image in the prompt.
@Suite struct SelfRewardScorerTests {
    /// A template whose rendering of a finished assistant turn starts exactly as the generation prompt
    /// followed by the answer (as the built-in model's does), so a kept candidate is a cached prefix.
    static let template = """
        {% for m in messages %}<|{{ m['role'] }}|>\n{% if m['content'] is string %}{{ m['content'] }}{% else %}\
        {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|end|>\n\
        {% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}
        """

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/vision")

    static func engine(keepCandidates: Bool) throws -> (EngineCandidateGenerator, EngineScorer) {
        let directory = fixtures.appendingPathComponent("llava-clip-llama")
        let llava = try LlavaModel(directory: directory, maxRows: 64, maxLogitRows: 8)
        let tokenizer = try Tokenizer(contentsOf: directory)
        let generator = TextGenerator(
            model: llava.language, vision: llava, tokenizer: tokenizer, kvCapacityTokens: 8192, prefixCacheEntries: 16)
        let executor = EngineExecutor(generator: generator)
        let prompt = try ChatPrompt(tokenizer: tokenizer, template: ChatTemplate(source: Self.template))
        let images = ImageStore()
        images.put(try Data(contentsOf: fixtures.appendingPathComponent("images/rgb-landscape.png")), hash: "landscape")
        return (
            EngineCandidateGenerator(
                executor: executor, prompt: prompt, stopTokenIds: generator.eosTokenIds(generationConfig: nil), images: images,
                keepCandidates: keepCandidates),
            EngineScorer(executor: executor, prompt: prompt, images: images)
        )
    }

    @Test func scoresReuseTheCandidatesAndDoNotDependOnTheBatch() async throws {
        let (generator, scorer) = try Self.engine(keepCandidates: true)
        let request = GenerateRequest(
            question: "What is shown?", imageRef: "landscape", assistantPrefix: "<SUMMARY>", seeds: [11, 12, 13], stop: ["</SUMMARY>"],
            maxNewTokens: 10, sampling: .reference)
        let candidates = try await generator.generate(request)
        let answers = candidates.map { "<SUMMARY>" + $0.text }
        let scoring = ScoreRequest(
            scoring: answers, topic: .summary, question: "What is shown?", imageRef: "landscape", templates: .builtIn)
        let warm = try await scorer.scoreWithCounts(scoring)

        // A fresh engine has nothing cached: it computes every prompt whole.
        let (_, coldScorer) = try Self.engine(keepCandidates: false)
        let cold = try await coldScorer.scoreWithCounts(scoring)
        #expect(cold.cachedTokens == 0)
        #expect(warm.cachedTokens + warm.computedTokens == cold.computedTokens)
        // At least each prompt came from the cache. (This fixture's random model writes bytes that are
        // not UTF-8, so its candidates' text does not tokenize back to their tokens; the test below
        // checks the reuse of the candidates' own keys and values token by token.)
        let promptTokens = try generator.engineRequest(request, images: try generator.images.images(for: "landscape")).promptTokens.count
        #expect(warm.cachedTokens >= answers.count * promptTokens)

        // Same scores, bit for bit, cached or not, in one batch or one at a time.
        #expect(warm.scores == cold.scores)
        var oneByOne: [Double] = []
        for answer in answers {
            var single = scoring
            single.answers = [answer]
            oneByOne += try await coldScorer.score(single)
        }
        #expect(oneByOne == warm.scores)
        let finite = warm.scores.allSatisfy { $0.isFinite }
        #expect(finite)
        #expect(Set(warm.scores).count > 1, "different candidates, different scores")
    }
}

extension SelfRewardScorerTests {
    /// A kept sample is a cached prefix: scoring its tokens plus a suffix computes the suffix and the
    /// sample's last token (sampled, never run) only, and gives what a cold engine gives.
    @Test func keptSamplesAreReusedTokenForToken() async throws {
        let (generator, _) = try Self.engine(keepCandidates: true)
        let engine = generator.executor.generator
        let images = try generator.images.images(for: "landscape")
        let request = try generator.engineRequest(
            GenerateRequest(
                question: "What is shown?", imageRef: "landscape", assistantPrefix: "<SUMMARY>", seeds: [21, 22, 23, 24],
                stop: [], maxNewTokens: 6, sampling: .reference),
            images: images)
        #expect(request.keepSamples)
        let samples = try await generator.executor.run { try $0.generate(request) }.samples
        let suffix = engine.tokenizer.encode(" Is it right? Answer:", addSpecialTokens: false)
        let items = samples.map {
            ScoredPrompt(prompt: request.promptTokens + $0.tokenIds + suffix, continuations: [[3], [4, 5]])
        }
        let warm = try await generator.executor.run { try $0.scoreContinuations(items, images: images) }
        // Phase 1 computes each sample's last token and the suffix; phase 2 the second choice's first token.
        #expect(warm.computedTokens == items.count * (1 + suffix.count) + items.count)
        let (coldGenerator, _) = try Self.engine(keepCandidates: false)
        let cold = try await coldGenerator.executor.run { try $0.scoreContinuations(items, images: images) }
        #expect(cold.cachedPromptTokens == 0)
        #expect(cold.logprobs == warm.logprobs)
    }
}

/// Sequence-classification reward models against transformers (scripts/fixtures/make_reward_fixtures.py).
@Suite struct RewardModelTests {
    struct Reference: Decodable {
        struct Case: Decodable {
            let question: String
            let answer: String
            let input_ids: [Int]
            let reward: Float
        }
        struct Padded: Decodable {
            let input_ids: [Int]
            let reward: Float
        }
        let pad_token_id: Int
        let cases: [Case]
        let padded: Padded
    }

    static func directory(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/reward/\(name)")
    }

    @Test(arguments: ["llama", "qwen2"])
    func rewardsMatchTransformers(_ name: String) async throws {
        let directory = Self.directory(name)
        let reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: directory.appendingPathComponent("reference.json")))
        let model = try ModelLoader.loadRewardModel(
            directory, options: ModelLoader.Options(maxRows: 16, maxLogitRows: 8), kvCapacityTokens: 2048)
        #expect(model.padTokenId == reference.pad_token_id)
        let scorer = try RewardModelScorer(model: model)
        for c in reference.cases {
            #expect(try scorer.tokens(question: c.question, answer: c.answer) == c.input_ids)
        }
        // All cases in one call (rows of several passes: maxRows 16), then one at a time.
        let together = try model.rewards(reference.cases.map(\.input_ids))
        for (reward, c) in zip(together, reference.cases) { #expect(abs(reward - c.reward) < 1e-4) }
        for (i, c) in reference.cases.enumerated() {
            let alone = try model.rewards([c.input_ids])
            #expect(alone == [together[i]])
        }
        // Trailing padding is not read: the score is the last real token's.
        let padded = try model.rewards([reference.padded.input_ids])[0]
        #expect(abs(padded - reference.padded.reward) < 1e-4)

        let request = ScoreRequest(
            topic: .caption, question: reference.cases[0].question, imageRef: nil, answers: reference.cases.prefix(2).map(\.answer),
            verification: "", verdictPrefix: "", choices: [])
        let scores = try await scorer.score(request)
        #expect(scores == together.prefix(2).map(Double.init))
    }

    struct BuiltInReference: Decodable {
        struct Case: Decodable {
            let stage: String
            let question: String
            let answer: String
            let right: Bool
            let input_ids: [Int]
            let reward: Float
        }
        let pad_token_id: Int
        let cases: [Case]
    }

    /// The shipped reward model (models/stagebeam-shapes-reward, bf16 weights) against transformers
    /// (scripts/fixtures/make_builtin_reward_fixtures.py): tokens, rewards, and through the scorer a
    /// right stage above its wrong twin.
    @Test func theBuiltInRewardModelMatchesTransformers() async throws {
        let repository = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let reference = try JSONDecoder().decode(
            BuiltInReference.self, from: Data(contentsOf: Self.directory("builtin").appendingPathComponent("reference.json")))
        let model = try ModelLoader.loadRewardModel(
            repository.appendingPathComponent("models/stagebeam-shapes-reward"),
            options: ModelLoader.Options(maxRows: 64, maxLogitRows: 8), kvCapacityTokens: 8192)
        #expect(model.padTokenId == reference.pad_token_id)
        let scorer = try RewardModelScorer(model: model)
        for c in reference.cases {
            #expect(try scorer.tokens(question: c.question, answer: c.answer) == c.input_ids)
        }
        let rewards = try model.rewards(reference.cases.map(\.input_ids))
        for (reward, c) in zip(rewards, reference.cases) { #expect(abs(reward - c.reward) < 1e-4) }
        for pair in stride(from: 0, to: reference.cases.count, by: 2) {
            let (right, wrong) = (reference.cases[pair], reference.cases[pair + 1])
            let request = ScoreRequest(
                topic: right.stage == "reasoning" ? .reasoning : .conclusion, question: right.question, imageRef: nil,
                answers: [right.answer, wrong.answer], verification: "", verdictPrefix: "", choices: [])
            let scores = try await scorer.score(request)
            #expect(scores[0] > scores[1])
        }
    }

    @Test func aRewardModelIsNotAGenerator() throws {
        #expect(throws: ModelFormatError.self) { _ = try ModelLoader.load(Self.directory("llama")) }
        let causal = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/models/qwen2")
        #expect(throws: ModelFormatError.self) { _ = try ModelLoader.loadRewardModel(causal) }
    }
}
