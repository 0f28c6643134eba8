import Foundation
import LocalEngine
import Synchronization
import Testing

@testable import Jobs
@testable import Search

/// The evaluation loop over in-memory stand-ins of the engine: what is counted, and how the judge is asked.
struct EvaluatorTests {
    /// Writes each stage from a script keyed by the stage it is asked for (the stop string is its closing tag).
    struct StageScript: CandidateGenerator {
        let texts: [Stage: String]

        func generate(_ request: GenerateRequest) async throws -> [GeneratedCandidate] {
            let stage = Stage.allCases.first { request.stop.contains($0.closingTag) }!
            return request.seeds.map { _ in
                GeneratedCandidate(text: texts[stage]!, tokenCount: 5, cumulativeLogprob: -1, finishReason: .stop)
            }
        }
    }

    /// Records every request and always prefers the response shown first, in the request's mode.
    final class FirstPreferringJudge: Judge, Sendable {
        private let log = Mutex<[JudgeRequest]>([])
        var requests: [JudgeRequest] { log.withLock { $0 } }

        func judge(_ request: JudgeRequest) async throws -> JudgeReply {
            log.withLock { $0.append(request) }
            switch request.mode {
            case .logprob: return .choiceLogprobs(first: -0.1, second: -2.3)
            case .generate: return .verdict(text: "Response 2 answers 4. The better response is Response 1.")
            }
        }
    }

    /// Knows which texts are the better ones. Generate mode: always names the better one. Logprob mode: leans to
    /// the first response shown, by more than it separates the two when the better one is second, so it is wrong
    /// in that order alone; both orders' margins summed cancel the lean.
    struct LeaningJudge: Judge {
        let better: [String]

        func judge(_ request: JudgeRequest) async throws -> JudgeReply {
            let secondShown = request.prompt.range(of: "Response 2:\n")!.lowerBound
            let betterFirst = better.contains { request.prompt.range(of: $0).map { $0.lowerBound < secondShown } ?? false }
            switch request.mode {
            case .logprob: return betterFirst ? .choiceLogprobs(first: -0.3, second: -1.0) : .choiceLogprobs(first: -0.6, second: -0.9)
            case .generate: return .verdict(text: "The better response is Response \(betterFirst ? 1 : 2).")
            }
        }
    }

    static let script: [Stage: String] = [
        .summary: "Count them.</SUMMARY>", .caption: "Three red circles.</CAPTION>",
        .reasoning: "One, two, three.</REASONING>", .conclusion: "So the answer is 3.</CONCLUSION>"
    ]

    static let items = [
        EvalItem(id: "a", question: "How many red circles?", answer: "3", family: "count"),
        EvalItem(id: "b", question: "How many blue squares?", answer: "2", family: "count"),
        EvalItem(id: "c", question: "What color are the circles?", answer: "red")
    ]

    @Test func greedyRunsOnceAtBeamOne() {
        let plan = EvalRun.plan(methods: [.greedy, .stage, .bestOfN], beams: [2, 4, 2])
        #expect(
            plan == [
                EvalRun(method: .greedy, beam: 1), EvalRun(method: .stage, beam: 2), EvalRun(method: .stage, beam: 4),
                EvalRun(method: .bestOfN, beam: 2), EvalRun(method: .bestOfN, beam: 4)
            ])
    }

    @Test func aRowCountsAnswersFormatCallsAndTokens() async throws {
        let evaluator = Evaluator(
            generator: StageScript(texts: Self.script), judge: FirstPreferringJudge(), images: ImageStore(),
            templates: .builtIn)
        let greedy = try await evaluator.evaluate(Self.items, run: EvalRun(method: .greedy, beam: 1), config: SearchConfig(), progress: nil)
        #expect(greedy.score == Tally(n: 3, correct: 1))
        #expect(greedy.formatValid == 3 && greedy.judgeCalls == 0 && greedy.tokens == 3 * 4 * 5)
        #expect(greedy.byFamily == ["count": Tally(n: 2, correct: 1), EvalReport.noFamily: Tally(n: 1, correct: 0)])

        // Candidates that never close their stage are closed by the search: not format valid.
        var open = Self.script
        open[.reasoning] = "One, two"
        let unclosed = Evaluator(
            generator: StageScript(texts: open), judge: FirstPreferringJudge(), images: ImageStore(), templates: .builtIn)
        let row = try await unclosed.evaluate(Self.items, run: EvalRun(method: .stage, beam: 2), config: SearchConfig(), progress: nil)
        #expect(row.formatValid == 0 && row.score.correct == 1)
        // Identical candidates are not judged, so no judge calls either.
        #expect(row.judgeCalls == 0 && row.tokens == 3 * 4 * 2 * 5)
    }

    @Test(arguments: VerdictMode.allCases)
    func eachPairIsAskedWithTheBetterTextFirstAndSecond(mode: VerdictMode) async throws {
        let judge = FirstPreferringJudge()
        let evaluator = Evaluator(generator: StageScript(texts: Self.script), judge: judge, images: ImageStore(), templates: .builtIn)
        let pairs = try EvalDataset.judgePairs(EvalDatasetTests.directory.appendingPathComponent("judge-test.jsonl"))
        var config = SearchConfig()
        config.judgeMode = mode // the pairs are asked as the search would ask them
        let accuracy = try await evaluator.judgeAccuracy(pairs, config: config, progress: nil)

        let requests = judge.requests
        #expect(requests.count == 2 * pairs.count)
        for (pair, asked) in zip(pairs, [requests[0...1], requests[2...3]]) {
            let (first, second) = (asked.first!, asked.last!)
            #expect(
                first.prompt
                    == JudgeTemplates.builtIn.renderPrompt(
                        topic: pair.topic, question: pair.question, hints: pair.hints,
                        first: pair.better, second: pair.worse))
            #expect(
                second.prompt
                    == JudgeTemplates.builtIn.renderPrompt(
                        topic: pair.topic, question: pair.question, hints: pair.hints,
                        first: pair.worse, second: pair.better))
            for request in asked {
                #expect(request.mode == mode && request.topic == pair.topic)
                if mode == .logprob {
                    #expect(
                        request.choices == JudgeTemplates.builtIn.choices && request.verdictPrefix == JudgeTemplates.builtIn.verdictPrefix)
                }
                #expect((request.imageRef != nil) == (pair.image != nil))
            }
        }
        // Always "the first one": right whenever the better text was first, wrong whenever it was second.
        #expect(
            accuracy.all.pairs == 2 && accuracy.all.betterFirst == Tally(n: 2, correct: 2)
                && accuracy.all.betterSecond == Tally(n: 2, correct: 0))
        #expect(accuracy.all.accuracy == 0.5)
        // Read as one both-orders match, position alone decides nothing: undecided, so wrong.
        #expect(accuracy.all.bothOrders == Tally(n: 2, correct: 0))
        #expect(accuracy.byTopic.keys.sorted { $0.rawValue < $1.rawValue } == [.caption, .conclusion])
        #expect(accuracy.byTopic[.caption]?.pairs == 1)
    }

    /// The both-orders figure is the search's own decision: logprob margins summed cancel a lean to the first response.
    @Test(arguments: VerdictMode.allCases)
    func bothOrdersReadsThePairAsTheSearchDoes(mode: VerdictMode) async throws {
        let pairs = try EvalDataset.judgePairs(EvalDatasetTests.directory.appendingPathComponent("judge-test.jsonl"))
        let evaluator = Evaluator(
            generator: StageScript(texts: Self.script), judge: LeaningJudge(better: pairs.map(\.better)),
            images: ImageStore(), templates: .builtIn)
        var config = SearchConfig()
        config.judgeMode = mode
        let accuracy = try await evaluator.judgeAccuracy(pairs, config: config, progress: nil)
        #expect(accuracy.all.betterFirst == Tally(n: 2, correct: 2))
        #expect(accuracy.all.betterSecond == Tally(n: 2, correct: mode == .generate ? 2 : 0))
        #expect(accuracy.all.bothOrders == Tally(n: 2, correct: 2))
    }
}
