import Testing

@testable import Search

/// The search keeps what each call cost where it ran, and sums it per stage and per search.
@Suite struct CostTests {
    /// Reports a fixed cost for every call.
    struct Measuring: CandidateGenerator, Judge {
        let generator: ScriptedGenerator
        let judge: FakeJudge

        func generate(_ request: GenerateRequest) async throws -> [GeneratedCandidate] { try await generator.generate(request) }
        func generateMeasured(_ request: GenerateRequest) async throws -> MeasuredCandidates {
            MeasuredCandidates(
                candidates: try await generate(request),
                cost: ComputeCost(prefillSeconds: 0.5, decodeSeconds: 2, promptTokens: 10, reusedPromptTokens: 4))
        }
        func judge(_ request: JudgeRequest) async throws -> JudgeReply { try await judge.judge(request) }
        func judgeMeasured(_ request: JudgeRequest) async throws -> MeasuredReply {
            MeasuredReply(
                reply: try await judge(request),
                cost: ComputeCost(prefillSeconds: 0.25, decodeSeconds: 0.125, promptTokens: 100, reusedPromptTokens: 30))
        }
    }

    @Test(arguments: [SearchMethod.stage, .bestOfN])
    func costsAreKeptPerCallAndSummed(method: SearchMethod) async throws {
        let engine = Measuring(
            generator: ScriptedGenerator { request, position in
                candidate(" \(currentStage(request)!.rawValue) \(request.seeds[position] % 97) \(currentStage(request)!.closingTag)")
            },
            judge: FakeJudge(prefer: prefersLonger))
        let result = try await StageBeamSearch(
            generator: engine, judge: engine, templates: testTemplates, config: config(method, beam: 4, tournament: .bracket)
        ).run(question: "q")
        let generateCalls = result.stages.flatMap(\.units).flatMap { $0.generateCosts ?? [] }
        let judgeCalls = (result.stages.flatMap(\.units).compactMap(\.tournament) + [result.finalTournament].compactMap { $0 })
            .flatMap(\.matches).flatMap(\.calls)
        #expect(!generateCalls.isEmpty && judgeCalls.count == result.counts.judgeCalls && !judgeCalls.isEmpty)
        #expect(judgeCalls.allSatisfy { $0.cost?.compute?.promptTokens == 100 })
        let cost = result.cost
        #expect(cost.measuredCalls == generateCalls.count + judgeCalls.count)
        #expect(cost.candidatePrefillSeconds == 0.5 * Double(generateCalls.count))
        #expect(cost.candidateDecodeSeconds == 2 * Double(generateCalls.count))
        #expect(cost.candidateReusedPromptTokens == 4 * generateCalls.count)
        #expect(cost.judgePrefillSeconds == 0.25 * Double(judgeCalls.count))
        #expect(cost.judgePromptTokens == 100 * judgeCalls.count && cost.judgeReusedPromptTokens == 30 * judgeCalls.count)
        // Waiting is wall time minus compute, never negative; the stages' parts add up to the search's.
        #expect(cost.candidateWaitingSeconds >= 0 && cost.judgeWaitingSeconds >= 0)
        #expect(result.stages.map(\.cost.candidatePromptTokens).reduce(0, +) == cost.candidatePromptTokens)
    }
}
