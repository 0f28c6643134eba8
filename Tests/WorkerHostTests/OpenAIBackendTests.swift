import Cluster
import Foundation
import Generation
import LocalEngine
import Search
import Testing
import Tokenization
import Wire

@testable import WorkerHost

/// The server-backed worker's backend against `FakeInferenceServer`: prompts as the engine builds
/// them, one request per candidate with its seed, the engine's reading of the server's tokens,
/// logprob verdicts, identity, and every server failure mapped to the cluster's retry rules.
@Suite(.serialized) struct OpenAIBackendTests {
    static let gguf = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gguf/llama-f32.gguf")

    struct Fixture {
        let model: LoadedModel
        let prompt: ChatPrompt
        let eos: Int
    }

    static func fixture() throws -> Fixture {
        let model = try ModelLoader.load(gguf)
        let generator = model.makeGenerator(kvCapacityTokens: 16, prefixCacheEntries: 0)
        return Fixture(
            model: model, prompt: try ChatPrompt(tokenizer: model.tokenizer),
            eos: generator.eosTokenIds(generationConfig: model.generationConfig).min()!)
    }

    /// Runs `body` with a fake server and a backend connected to it.
    func withBackend(
        slots: Int = 2, llamaCpp: Bool = true, rareTokens: Set<Int> = [], missingTokens: Set<Int> = [],
        configure: (inout OpenAIBackend.Configuration) -> Void = { _ in },
        _ body: (FakeInferenceServer, OpenAIBackend, Fixture) async throws -> Void
    ) async throws {
        let fixture = try Self.fixture()
        let server = FakeInferenceServer(
            tokenizer: fixture.model.tokenizer, eosToken: fixture.eos, slots: slots, llamaCpp: llamaCpp, rareTokens: rareTokens,
            missingTokens: missingTokens)
        let (port, task) = try await server.start()
        defer { task.cancel() }
        var configuration = OpenAIBackend.Configuration(url: "http://127.0.0.1:\(port)/v1", slots: llamaCpp ? nil : slots)
        configure(&configuration)
        let backend = try await OpenAIBackend.connect(configuration: configuration, model: fixture.model)
        do {
            try await body(server, backend, fixture)
        } catch {
            try await backend.shutdown()
            throw error
        }
        try await backend.shutdown()
    }

    func generateRequest(seeds: [UInt64], maxNewTokens: UInt32 = 40) -> Stagebeam_V1_GenerateRequest {
        var request = Stagebeam_V1_GenerateRequest()
        request.requestID = "r1"
        request.jobID = "j1"
        request.question = "How many legs does a spider have?"
        request.assistantPrefix = "<SUMMARY>"
        request.n = UInt32(seeds.count)
        request.seeds = seeds
        request.stop = ["</SUMMARY>"]
        request.maxNewTokens = maxNewTokens
        request.sampling.temperature = 0.6
        request.sampling.topP = 0.9
        return request
    }

    @Test func generateSendsTheEnginesPromptAndReadsTokensAsTheEngine() async throws {
        try await withBackend { server, backend, fixture in
            #expect(backend.dialect == .llamaCpp)
            #expect(backend.slots == 2)
            #expect(backend.contextTokens == min(2048, fixture.model.makeGenerator(kvCapacityTokens: 16).contextLength))
            let request = generateRequest(seeds: [4, 5, 6, 7])
            let result = try await backend.generate(request, image: nil, deadline: nil)
            let tokenizer = fixture.model.tokenizer
            #expect(result.candidates.map(\.seed) == [4, 5, 6, 7])

            // Seeds 4 and 5 close the summary: the text keeps the stop string, as the engine's does.
            #expect(result.candidates[0].text == "plan 4 first</SUMMARY>")
            #expect(result.candidates[0].finishReason == .stop)
            #expect(result.candidates[1].text == "plan 5 first</SUMMARY>")
            // Seed 6 ends with end-of-generation: counted, not written.
            #expect(result.candidates[2].text == "short 6")
            #expect(result.candidates[2].finishReason == .eos)
            #expect(result.candidates[2].tokenCount == UInt32(tokenizer.encode("short 6", addSpecialTokens: false).count + 1))
            // Seed 7 runs to the budget.
            #expect(result.candidates[3].finishReason == .length)
            #expect(result.candidates[3].tokenCount == 40)
            #expect(result.candidates[3].cumulativeLogprob == -0.25 * 40)

            // One request per candidate, each with the engine's prompt tokens and the job's sampling.
            let expectedPrompt = try fixture.prompt.tokens(user: request.question, assistantPrefix: request.assistantPrefix)
            #expect(result.promptTokens == UInt32(expectedPrompt.count))
            let bodies = server.received
            #expect(bodies.count == 4)
            #expect(Set(bodies.compactMap { $0["seed"] as? Int }) == [4, 5, 6, 7])
            for body in bodies {
                #expect(body["prompt"] as? [Int] == expectedPrompt)
                #expect(body["cache_prompt"] as? Bool == false)
                #expect(body["n_predict"] as? Int == 40)
                #expect(body["stop"] as? [String] == ["</SUMMARY>"])
                #expect(body["samplers"] as? [String] == ["penalties", "top_k", "temperature", "top_p", "min_p"])
                #expect(abs((body["temperature"] as? Double ?? 0) - 0.6) < 1e-6)
                #expect(abs((body["top_p"] as? Double ?? 0) - 0.9) < 1e-6)
                #expect(body["top_k"] as? Int == 0)
                #expect(body["repeat_penalty"] as? Double == 1)
                #expect(body["repeat_last_n"] as? Int == backend.contextTokens)
            }
        }
    }

    /// A candidate's text depends on its seed alone, not on which request carried it.
    @Test func candidatesDoNotDependOnHowAStageIsSplit() async throws {
        try await withBackend { _, backend, _ in
            let whole = try await backend.generate(generateRequest(seeds: [20, 21, 22, 23]), image: nil, deadline: nil)
            let first = try await backend.generate(generateRequest(seeds: [20, 21]), image: nil, deadline: nil)
            let second = try await backend.generate(generateRequest(seeds: [22, 23]), image: nil, deadline: nil)
            #expect(whole.candidates == first.candidates + second.candidates)
        }
    }

    @Test func seedsFoldToLlamaCppsThirtyTwoBits() {
        #expect(OpenAIBackend.serverSeed(7) == 7)
        #expect(OpenAIBackend.serverSeed(0x1_0000_0002) == 3)
        // 0xFFFFFFFF means "random" to llama.cpp.
        #expect(OpenAIBackend.serverSeed(0xFFFF_FFFF) == 0xFFFF_FFFE)
    }

    func judgeRequest() -> Stagebeam_V1_JudgeRequest {
        var request = Stagebeam_V1_JudgeRequest()
        request.requestID = "v1"
        request.jobID = "j1"
        request.stage = .summary
        request.verdictMode = .logprob
        request.prompt = "Which summary is better? Response 1: plan a. Response 2: plan b."
        request.verdictPrefix = "The better summary is response "
        request.choices = ["1", "2"]
        return request
    }

    /// The verdict reads each choice's log-probability from the server's top list, asking for the
    /// whole vocabulary when a choice is not among the first 20.
    @Test func logprobVerdictReadsTheChoiceTokens() async throws {
        let fixture = try Self.fixture()
        let request = judgeRequest()
        let (shared, continuations) = try fixture.prompt.choiceTokens(
            user: request.prompt, imageCount: 0, verdictPrefix: request.verdictPrefix, choices: request.choices, expand: { $0 })
        try await withBackend(rareTokens: [continuations[1][0]]) { server, backend, _ in
            let result = try await backend.judge(request, image: nil, deadline: nil)
            func expected(_ continuation: [Int]) -> Double {
                continuation.indices.reduce(0.0) { total, position in
                    total
                        + server.verdictDistribution(prompt: shared + continuation[..<position]).first { $0.id == continuation[position] }!
                        .logprob
                }
            }
            #expect(result.logprobFirst == expected(continuations[0]))
            #expect(result.logprobSecond == expected(continuations[1]))
            #expect(result.choice == (result.logprobFirst > result.logprobSecond ? .first : .second))
            let asked = server.received.map { $0["n_probs"] as? Int ?? 0 }
            #expect(asked.prefix(2) == [20, fixture.model.tokenizer.vocabularySize])
            #expect(server.received.first?["prompt"] as? [Int] == shared)
        }
    }

    func rewardRequest() -> Stagebeam_V1_RewardRequest {
        let templates = RewardTemplates.builtIn
        var request = Stagebeam_V1_RewardRequest()
        request.requestID = "s1"
        request.jobID = "j1"
        request.stage = .summary
        request.question = "How many legs does a spider have?"
        request.assistantPrefixes = ["", "<SUMMARY>I count legs.</SUMMARY>"]
        let candidates: [(UInt32, String)] = [
            (0, "<SUMMARY>plan a</SUMMARY>"), (1, "<CAPTION>a spider</CAPTION>"), (0, "<SUMMARY>plan b</SUMMARY>")
        ]
        request.candidates = candidates.map {
            var candidate = Stagebeam_V1_RewardCandidate()
            candidate.prefixIndex = $0.0
            candidate.text = $0.1
            return candidate
        }
        request.verification = templates.renderVerification(topic: .summary, question: request.question)
        request.verdictPrefix = templates.verdictPrefix
        request.choices = templates.choices
        return request
    }

    /// The self-reward prompt the engine scores for candidate `index` of `request`.
    func selfRewardTokens(_ request: Stagebeam_V1_RewardRequest, _ index: Int, fixture: Fixture) throws -> (
        shared: [Int], continuations: [[Int]]
    ) {
        let candidate = request.candidates[index]
        return try fixture.prompt.selfRewardTokens(
            user: request.question, imageCount: 0, answer: request.assistantPrefixes[Int(candidate.prefixIndex)] + candidate.text,
            verification: request.verification, verdictPrefix: request.verdictPrefix, choices: request.choices, expand: { $0 })
    }

    /// log p(continuation | shared) under the fake server's distributions.
    func fakeLogprob(_ server: FakeInferenceServer, shared: [Int], continuation: [Int]) -> Double {
        continuation.indices.reduce(0.0) { total, position in
            total
                + server.verdictDistribution(prompt: shared + continuation[..<position]).first { $0.id == continuation[position] }!.logprob
        }
    }

    /// Self-reward through the server: each candidate's prompt is the engine's, sent on its own and
    /// at once with the others, and its score is log p(yes) − log p(no) from the server's
    /// log-probabilities; "no" missing from the first 20 is asked again over the whole vocabulary.
    @Test func selfRewardReadsYesAndNoFromTheServer() async throws {
        let fixture = try Self.fixture()
        let request = rewardRequest()
        let items = try request.candidates.indices.map { try selfRewardTokens(request, $0, fixture: fixture) }
        let noTokens = Set(items.map { $0.continuations[1][0] })
        try await withBackend(slots: 3, rareTokens: noTokens) { server, backend, _ in
            let scorer = WorkerScorer(selfReward: backend)
            #expect(scorer.modelKind == .selfReward)
            #expect(scorer.modelHash == backend.modelHash)
            #expect(scorer.scorerName == RewardCalibration.selfReward)
            server.inject(.slow(.milliseconds(300)), .slow(.milliseconds(300)), .slow(.milliseconds(300)))
            let result = try await scorer.score(request, image: nil, deadline: nil, control: GenerationControl())
            let expected = items.map { item in
                fakeLogprob(server, shared: item.shared, continuation: item.continuations[0])
                    - fakeLogprob(server, shared: item.shared, continuation: item.continuations[1])
            }
            #expect(result.scores == expected)
            #expect(result.requestID == "s1")
            #expect(result.rewardModelHash == backend.modelHash)
            #expect(result.batchCandidates == 3)
            // One call per candidate at once, then the whole vocabulary for each "no".
            #expect(server.mostInFlight == 3)
            let prompts = server.received.map { $0["prompt"] as? [Int] ?? [] }
            for item in items { #expect(prompts.contains(item.shared)) }
            #expect(server.received.allSatisfy { $0["n_predict"] as? Int == 1 && $0["cache_prompt"] as? Bool == false })
            #expect(server.received.contains { $0["n_probs"] as? Int == fixture.model.tokenizer.vocabularySize })
        }
    }

    /// A candidate too long for the context scores −∞ without a call, as on the engine; a word the
    /// server never gives a log-probability for fails the request with a clear error, never a
    /// made-up score; server failures map as for generate.
    @Test func selfRewardEdgesAndFailures() async throws {
        let fixture = try Self.fixture()
        var request = rewardRequest()
        request.candidates[1].text = String(repeating: "spider legs ", count: 1100)
        try await withBackend { server, backend, _ in
            let scorer = WorkerScorer(selfReward: backend)
            let result = try await scorer.score(request, image: nil, deadline: nil, control: GenerationControl())
            #expect(result.scores[1] == -.infinity)
            #expect(result.scores[0].isFinite && result.scores[2].isFinite)

            // One candidate: no sibling call of a failed request can reach the server after the next fault is queued.
            var single = rewardRequest()
            single.candidates = [single.candidates[0]]
            server.inject(.status(503))
            let busy = await #expect(throws: ClusterError.self) {
                try await scorer.score(single, image: nil, deadline: nil, control: GenerationControl())
            }
            #expect(busy?.code == .overloaded)
            server.inject(.slow(.seconds(3)))
            let late = await #expect(throws: ClusterError.self) {
                try await scorer.score(single, image: nil, deadline: .now + .milliseconds(300), control: GenerationControl())
            }
            #expect(late?.code == .deadlineExceeded)
        }
        let yes = try selfRewardTokens(request, 0, fixture: fixture).continuations[0][0]
        try await withBackend(missingTokens: [yes]) { _, backend, _ in
            let error = await #expect(throws: ClusterError.self) {
                try await WorkerScorer(selfReward: backend).score(
                    rewardRequest(), image: nil, deadline: nil, control: GenerationControl())
            }
            #expect(error?.code == .backendRejected)
            #expect(error?.message.contains("whole vocabulary") == true)
        }
    }

    @Test func generateModeVerdictIsTheServersText() async throws {
        try await withBackend { server, backend, _ in
            var request = judgeRequest()
            request.verdictMode = .generate
            request.seed = 6
            request.maxVerdictTokens = 30
            let result = try await backend.judge(request, image: nil, deadline: nil)
            #expect(result.verdictText == "short 6")
            #expect(server.received.first?["seed"] as? Int == 6)
        }
    }

    /// Every server failure becomes the error the coordinator acts on, and the worker keeps serving.
    @Test func serverFailuresMapToTheClustersRetryRules() async throws {
        try await withBackend { server, backend, _ in
            let cases: [(FakeInferenceServer.Fault, Stagebeam_V1_ErrorCode)] = [
                (.status(500), .backendUnavailable), (.status(429), .overloaded), (.status(503), .overloaded),
                (.status(400), .backendRejected), (.drop, .backendUnavailable)
            ]
            for (fault, code) in cases {
                server.inject(fault)
                let error = await #expect(throws: ClusterError.self) {
                    try await backend.generate(generateRequest(seeds: [4]), image: nil, deadline: nil)
                }
                #expect(error?.code == code, "\(fault)")
                #expect(error?.message.contains("127.0.0.1") == true)
            }
            #expect(ClusterError(.backendUnavailable, "").isRetryable)
            #expect(ClusterError(.overloaded, "").isRetryable)
            #expect(!ClusterError(.backendRejected, "").isRetryable)

            // A server slower than the request's deadline: abandoned at the deadline.
            server.inject(.slow(.seconds(3)))
            let started = ContinuousClock.now
            let late = await #expect(throws: ClusterError.self) {
                try await backend.generate(generateRequest(seeds: [4]), image: nil, deadline: .now + .milliseconds(300))
            }
            #expect(late?.code == .deadlineExceeded)
            #expect(ContinuousClock.now - started < .seconds(2))

            // A slow answer within the deadline is an answer.
            server.inject(.slow(.milliseconds(200)))
            let result = try await backend.generate(generateRequest(seeds: [4]), image: nil, deadline: .now + .seconds(10))
            #expect(result.candidates.first?.text == "plan 4 first</SUMMARY>")
        }
    }

    @Test func candidatesOfARequestRunConcurrently() async throws {
        try await withBackend(slots: 4) { server, backend, _ in
            server.inject(.slow(.milliseconds(300)), .slow(.milliseconds(300)), .slow(.milliseconds(300)), .slow(.milliseconds(300)))
            _ = try await backend.generate(generateRequest(seeds: [4, 5, 6, 7]), image: nil, deadline: nil)
            #expect(server.mostInFlight == 4)
        }
    }

    @Test func imagesAreRefusedWithAClearError() async throws {
        try await withBackend { _, backend, _ in
            let error = await #expect(throws: ClusterError.self) {
                try await backend.generate(
                    generateRequest(seeds: [4]), image: PromptImage(hash: "abc", data: Data([1, 2, 3])), deadline: nil)
            }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("text prompts only") == true)
            #expect(backend.imageRefusal != nil)
        }
        // A model that takes images is refused before the worker registers.
        let llava = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/vision/llava-clip-llama")
        let model = try ModelLoader.load(llava)
        let error = await #expect(throws: ClusterError.self) {
            _ = try await OpenAIBackend.connect(configuration: .init(url: "http://127.0.0.1:9"), model: model)
        }
        #expect(error?.message.contains("takes images") == true)
    }

    /// The identity names the server kind, the served model and the prompt model; it is never the
    /// engine's own identity of the same file, and an operator-given id replaces it.
    @Test func identityAndDeterminismCaveat() async throws {
        let engineIdentity = try ModelIdentity.compute(model: Self.gguf)
        var derived = ""
        try await withBackend(slots: 1) { _, backend, _ in
            derived = backend.modelHash
            #expect(derived.count == 64)
            #expect(derived != engineIdentity)
            #expect(backend.modelName == "fake-model")
            #expect(backend.determinismCaveat.isEmpty)
        }
        try await withBackend(slots: 3) { _, backend, _ in
            #expect(backend.modelHash == derived)
            #expect(backend.determinismCaveat.contains("3 slots"))
        }
        try await withBackend(configure: { $0.servedModel = "another-model" }) { _, backend, _ in
            #expect(backend.modelHash != derived)
        }
        let pinned = String(repeating: "ab", count: 32)
        try await withBackend(configure: { $0.modelID = pinned }) { _, backend, _ in
            #expect(backend.modelHash == pinned)
        }
    }

    /// vLLM's dialect: `/v1/completions` with token ids, stop strings kept, prompt_logprobs verdicts.
    @Test func completionsDialect() async throws {
        let fixture = try Self.fixture()
        let server = FakeInferenceServer(tokenizer: fixture.model.tokenizer, eosToken: fixture.eos, llamaCpp: false)
        let (port, task) = try await server.start()
        defer { task.cancel() }
        let error = await #expect(throws: ClusterError.self) {
            _ = try await OpenAIBackend.connect(configuration: .init(url: "http://127.0.0.1:\(port)"), model: fixture.model)
        }
        #expect(error?.message.contains("--max-batch") == true)

        try await withBackend(slots: 4, llamaCpp: false) { server, backend, fixture in
            #expect(backend.dialect == .completions)
            #expect(!backend.determinismCaveat.isEmpty)
            let result = try await backend.generate(generateRequest(seeds: [4, 6, 7]), image: nil, deadline: nil)
            #expect(result.candidates.map(\.text).first == "plan 4 first</SUMMARY>")
            #expect(result.candidates.map(\.finishReason) == [.stop, .eos, .length])
            let body = try #require(server.received.first)
            #expect(body["model"] as? String == "fake-model")
            #expect(body["include_stop_str_in_output"] as? Bool == true)
            #expect(body["top_k"] == nil)

            let request = judgeRequest()
            let verdict = try await backend.judge(request, image: nil, deadline: nil)
            let (shared, continuations) = try fixture.prompt.choiceTokens(
                user: request.prompt, imageCount: 0, verdictPrefix: request.verdictPrefix, choices: request.choices, expand: { $0 })
            let first = continuations[0].indices.reduce(0.0) { total, position in
                total
                    + server.verdictDistribution(prompt: shared + continuations[0][..<position]).first {
                        $0.id == continuations[0][position]
                    }!.logprob
            }
            #expect(verdict.logprobFirst == first)

            let reward = rewardRequest()
            let scored = try await WorkerScorer(selfReward: backend).score(reward, image: nil, deadline: nil, control: GenerationControl())
            let item = try selfRewardTokens(reward, 0, fixture: fixture)
            #expect(
                scored.scores[0]
                    == fakeLogprob(server, shared: item.shared, continuation: item.continuations[0])
                    - fakeLogprob(server, shared: item.shared, continuation: item.continuations[1]))
        }
    }
}
