import ChatTemplates
import Foundation
import Models
import Testing
import Tokenization
import Vision

/// The built-in model (models/stagebeam-shapes, trained by training/train.py) against what
/// transformers computes on it (Tests/Fixtures/builtin/reference.json, from training/reference.py):
/// its own chat template and tokenizer, its PNG pixels, image features, logits and a greedy answer.
@Suite struct BuiltInCheckpointTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let modelDirectory = repository.appendingPathComponent("models/stagebeam-shapes")

    static func fixture() throws -> LlavaFixture {
        try JSONDecoder().decode(
            LlavaFixture.self, from: Data(contentsOf: repository.appendingPathComponent("Tests/Fixtures/builtin/reference.json")))
    }

    static func model() throws -> LlavaModel {
        try LlavaModel.load(directory: modelDirectory, maxRows: 64, maxLogitRows: 64)
    }

    @Test func promptTokensMatchTransformers() throws {
        let f = try Self.fixture()
        let tokenizer = try Tokenizer(contentsOf: Self.modelDirectory)
        let template = try #require(tokenizer.chatTemplate)
        let question = try #require(f.prompt.components(separatedBy: "<image>\n").last?.components(separatedBy: "<|end|>").first)
        let text = try template.render(
            messages: [ChatMessage(role: "user", content: question, imageCount: 1)],
            addGenerationPrompt: true, bosToken: tokenizer.bosToken, eosToken: tokenizer.eosToken)
        #expect(text == f.prompt)
        #expect(tokenizer.encode(text, addSpecialTokens: false) == f.unexpanded_ids)
        #expect(try Self.model().expandImageTokens(f.unexpanded_ids) == f.input_ids)
    }

    @Test func pixelsFeaturesAndLogitsMatchTransformers() throws {
        let f = try Self.fixture(), model = try Self.model()
        let pixels = try model.preprocessor(Data(contentsOf: Self.repository.appendingPathComponent(f.image)))
        #expect(pixels.values == f.pixel_values, "PNG pixels are bit-exact")
        let features = try model.imageFeatures(for: pixels)
        let featureError = zip(features.values, f.image_features.flatMap { $0 }).map { abs($0 - $1) }.max()!
        #expect(featureError < 1e-4, "max |Δfeature| \(featureError)")

        let worst = try logitError(model, ids: f.input_ids, features: features, expected: f.logits)
        #expect(worst < 1e-4, "max |Δlogit| \(worst)")
    }

    @Test func greedyAnswerMatchesTransformers() throws {
        let f = try Self.fixture(), model = try Self.model()
        let features = try model.imageFeatures(imageData: Data(contentsOf: Self.repository.appendingPathComponent(f.image)))
        let prompt = try model.prompt(ids: f.input_ids, images: [features])
        #expect(try greedy(model, prompt, count: f.greedy_ids.count) == f.greedy_ids)
    }

    /// A judge prompt whose greedy check runs past position 1,024 (the model's context until commit 38d0fac,
    /// 1,280 since): the prompt's last logits and the whole check equal transformers'.
    @Test func longJudgeCheckMatchesTransformers() throws {
        struct LongJudge: Decodable {
            let image: String
            let input_ids: [Int]
            let last_logits: [Float]
            let greedy_ids: [Int]
        }
        let f = try JSONDecoder().decode(
            LongJudge.self,
            from: Data(
                contentsOf: Self.repository.appendingPathComponent(
                    "Tests/Fixtures/builtin/reference-long-judge.json")))
        #expect(f.input_ids.count + f.greedy_ids.count > 1_024)
        let model = try Self.model()
        let features = try model.imageFeatures(imageData: Data(contentsOf: Self.repository.appendingPathComponent(f.image)))
        let prompt = try model.prompt(ids: f.input_ids, images: [features])
        var lastLogits: [Float] = []
        let ids = try greedy(model, prompt, count: f.greedy_ids.count, capacityTokens: 1_280) { lastLogits = $0 }
        let worst = zip(lastLogits, f.last_logits).map { abs($0 - $1) }.max()!
        #expect(lastLogits.count == f.last_logits.count && worst < 1e-4, "max |Δlogit| \(worst)")
        #expect(ids == f.greedy_ids)
    }
}
