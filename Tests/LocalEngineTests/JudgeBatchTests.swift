import Foundation
import Search
import Testing

@testable import LocalEngine

/// A bracket round's verdicts decoded as one batch give what each verdict gives alone: the same text
/// for the same prompt and seed whatever else shares the batch, so a search's answer does not
/// depend on batching.
@Suite struct JudgeBatchTests {
    /// The engine's judge with its batching hidden: `judgeBatch` falls back to the protocol's
    /// default, one engine call per comparison.
    struct OneAtATime: Judge {
        let inner: EngineJudge
        func judge(_ request: JudgeRequest) async throws -> JudgeReply { try await inner.judge(request) }
    }

    func verdictRequest(_ prompt: String, seed: UInt64) -> JudgeRequest {
        JudgeRequest(
            topic: .summary, imageRef: nil, prompt: prompt, mode: .generate, verdictPrefix: "", choices: [],
            maxNewTokens: 12, sampling: Sampling(temperature: 0.6, topP: 0.9), seed: seed)
    }

    @Test func batchedVerdictsEqualVerdictsAlone() async throws {
        let (_, judge, _) = try LocalEngineTests.engine()
        let requests = [
            verdictRequest("Which is better? Response 1: two. Response 2: three.", seed: 1),
            verdictRequest("Which is better? Response 1: three. Response 2: two.", seed: 2),
            verdictRequest("Which is better? Response 1: two. Response 2: three.", seed: 3)
        ]
        let batched = try await judge.judgeBatch(requests)
        let (_, fresh, _) = try LocalEngineTests.engine()
        var alone: [JudgeReply] = []
        for request in requests { alone.append(try await fresh.judgeMeasured(request).reply) }
        #expect(batched.map(\.reply) == alone)
        // Each reply carries its own prompt's figures.
        #expect(batched.allSatisfy { ($0.cost?.promptTokens ?? 0) > 0 })
    }

    @Test func bracketSearchIsTheSameBatchedOrNot() async throws {
        var config = SearchConfig()
        config.method = .stage
        config.beam = 4
        config.seed = 11
        config.maxStageTokens = 8
        config.tournament = .bracket
        config.judgeMode = .generate
        config.judgeMaxTokens = 10
        config.judgeBothOrders = true
        let (generator, judge, _) = try LocalEngineTests.engine()
        let batched = try await StageBeamSearch(generator: generator, judge: judge, config: config).run(question: "How many red circles?")
        let (otherGenerator, otherJudge, _) = try LocalEngineTests.engine()
        let alone = try await StageBeamSearch(generator: otherGenerator, judge: OneAtATime(inner: otherJudge), config: config).run(
            question: "How many red circles?")
        func verdicts(_ result: SearchResult) -> [[JudgeReply]] {
            result.stages.flatMap(\.units).compactMap(\.tournament).flatMap(\.matches).map { $0.calls.map(\.reply) }
        }
        #expect(batched.counts.judgeCalls > 0)
        #expect(batched.text == alone.text)
        #expect(verdicts(batched) == verdicts(alone))
    }
}
