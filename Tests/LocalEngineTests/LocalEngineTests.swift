import Foundation
import Generation
import Models
import Search
import Testing
import Tokenization

@testable import LocalEngine

@Suite struct LocalEngineTests {
    static func engine(_ name: String = "llama-gqa") throws -> (EngineCandidateGenerator, EngineJudge, EngineExecutor) {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/models/\(name)")
        let generator = TextGenerator(
            model: try LlamaModel(directory: directory, maxRows: 64, maxLogitRows: 16),
            tokenizer: try Tokenizer(contentsOf: directory), kvCapacityTokens: 8192)
        let executor = EngineExecutor(generator: generator)
        let prompt = try ChatPrompt(tokenizer: generator.tokenizer)
        let eos = generator.eosTokenIds(generationConfig: nil)
        return (
            EngineCandidateGenerator(executor: executor, prompt: prompt, stopTokenIds: eos),
            EngineJudge(executor: executor, prompt: prompt, stopTokenIds: eos), executor
        )
    }

    func config(_ method: SearchMethod, beam: Int = 3, seed: UInt64 = 5) -> SearchConfig {
        var config = SearchConfig()
        config.method = method
        config.beam = beam
        config.seed = seed
        config.maxStageTokens = 10
        return config
    }

    /// The whole method on a real (tiny, random) checkpoint: four stages, N−1 judge calls per
    /// stage, and the same answer when run again.
    @Test func stageSearchRunsAndIsDeterministic() async throws {
        let (generator, judge, _) = try Self.engine()
        let search = try StageBeamSearch(generator: generator, judge: judge, config: config(.stage))
        let first = try await search.run(question: "How many red circles are there?")
        #expect(first.stages.map(\.stage) == Stage.allCases)
        #expect(first.counts.candidates == 12)
        #expect(first.counts.judgeCalls + first.counts.undecidedMatches <= 8)
        #expect(first.text.hasPrefix("<SUMMARY>") && first.text.hasSuffix("</CONCLUSION>"))
        let (otherGenerator, otherJudge, _) = try Self.engine()
        let again = try await StageBeamSearch(generator: otherGenerator, judge: otherJudge, config: config(.stage)).run(
            question: "How many red circles are there?")
        #expect(again.text == first.text)
        let otherSeed = try await StageBeamSearch(generator: generator, judge: judge, config: config(.stage, seed: 6)).run(
            question: "How many red circles are there?")
        #expect(otherSeed.text != first.text)
    }

    /// The logprob verdict equals teacher-forced scoring of the two choice strings.
    @Test func logprobVerdictScoresBothChoices() async throws {
        let (_, judge, executor) = try Self.engine()
        let request = JudgeRequest(
            topic: .summary, imageRef: nil, prompt: "Which is better? A or B", mode: .logprob,
            verdictPrefix: "The better response is response ", choices: ["1", "2"],
            maxNewTokens: 1, sampling: .greedy, seed: 0)
        guard case .choiceLogprobs(let first, let second) = try await judge.judge(request) else {
            Issue.record("expected choice log-probabilities"); return
        }
        let (shared, continuations) = try judge.choiceTokens(request, imageCount: 0)
        let direct = try await executor.run { try $0.scoreContinuations(prompt: shared, continuations: continuations) }
        #expect(first == direct[0] && second == direct[1])
        #expect(first < 0 && second < 0 && first != second)
    }

    /// Budgets that would run past the context are cut to what the prompt leaves.
    @Test func budgetsStopAtTheContext() async throws {
        let (generator, judge, executor) = try Self.engine()
        let context = executor.generator.contextLength
        let candidates = try await generator.generate(
            GenerateRequest(
                question: "Why?", imageRef: nil, assistantPrefix: "<SUMMARY>", seeds: [1, 2], stop: [],
                maxNewTokens: context, sampling: .reference))
        let prompt = try generator.engineRequest(
            GenerateRequest(
                question: "Why?", imageRef: nil, assistantPrefix: "<SUMMARY>", seeds: [1], stop: [],
                maxNewTokens: 1, sampling: .reference), images: []
        ).promptTokens.count
        #expect(candidates.allSatisfy { $0.tokenCount <= context - prompt })
        let request = JudgeRequest(
            topic: .summary, imageRef: nil, prompt: "Which is better? A or B", mode: .generate,
            verdictPrefix: "", choices: [], maxNewTokens: context,
            sampling: .greedy, seed: 0)
        guard case .verdict(let text) = try await judge.judge(request) else {
            Issue.record("expected a written verdict"); return
        }
        #expect(!text.isEmpty)
    }

    /// A judge prompt that leaves no room in the context is an answer the search can use (an
    /// undecided match), in both modes, not an error that would end the search.
    @Test func judgePromptPastTheContextIsReportedNotThrown() async throws {
        let (_, judge, executor) = try Self.engine()
        let prompt = "Which is better? " + String(repeating: "two plus ", count: executor.generator.contextLength)
        for mode in VerdictMode.allCases {
            let request = JudgeRequest(
                topic: .answer, imageRef: nil, prompt: prompt, mode: mode,
                verdictPrefix: mode == .logprob ? "Response " : "", choices: mode == .logprob ? ["1", "2"] : [],
                maxNewTokens: 8, sampling: .greedy, seed: 0)
            guard case .promptTooLong(let message) = try await judge.judge(request) else {
                Issue.record("expected promptTooLong in \(mode) mode"); continue
            }
            #expect(message.contains("exceeds the context of \(executor.generator.contextLength)"))
        }
    }

    @Test func greedyMethodNeedsNoJudge() async throws {
        let (generator, _, _) = try Self.engine("qwen2")
        let result = try await StageBeamSearch(generator: generator, judge: nil, config: config(.greedy)).run(question: "Why?")
        #expect(result.counts.judgeCalls == 0 && result.counts.candidates == 4)
    }
}
