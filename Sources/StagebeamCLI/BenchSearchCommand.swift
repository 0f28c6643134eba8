import ArgumentParser
import Foundation
import Generation
import LocalEngine
import Search

/// What batching and prefix sharing save in the search itself: each beam width is run the
/// stagebeam way (a stage's N candidates decoded as one batch over one cached prefix) and the
/// reference implementation's way (candidates one after another, each re-running the whole prompt).
struct BenchSearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-search",
        abstract: "Time one stage-level search per beam width, batched vs one candidate at a time.")

    @OptionGroup var engine: EngineOptions

    @Option(help: "Comma-separated beam widths.")
    var beams = "1,2,4,8"
    @Option(help: "The question every search answers.")
    var question = "How many red circles are left if one is removed?"
    @Option(name: .customLong("max-stage-tokens")) var maxStageTokens = 32
    @Option(help: "Searches per beam width and way; the median is reported.")
    var repeats = 3
    @Flag(help: "Print JSON instead of a table.")
    var json = false

    struct Row: Encodable {
        let beam: Int
        let batched_seconds: Double
        let one_by_one_seconds: Double
        let speedup: Double
        let candidates: Int
        let judge_calls: Int
        /// Batch invariance: both ways must produce the very same answer.
        let same_answer: Bool
    }

    func run() async throws {
        let widths = beams.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !widths.isEmpty, widths.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--beams takes positive integers, e.g. 1,2,4,8")
        }
        let batched = try engine.makeLocalEngine(images: ImageStore())
        // The reference's way: no KV reuse between calls, one candidate per call.
        let cold = try engine.makeLocalEngine(images: ImageStore(), prefixCacheEntries: 0)
        let oneByOne = OneCandidateAtATime(inner: cold.generator)

        var rows: [Row] = []
        for beam in widths {
            var config = SearchConfig()
            config.beam = beam
            config.maxStageTokens = maxStageTokens
            config.seed = 1
            var fast: [Double] = [], slow: [Double] = []
            var last: (SearchResult, SearchResult)?
            for _ in 0..<repeats {
                let a = try await StageBeamSearch(generator: batched.generator, judge: batched.judge, config: config).run(
                    question: question)
                let b = try await StageBeamSearch(generator: oneByOne, judge: cold.judge, config: config).run(question: question)
                fast.append(a.seconds)
                slow.append(b.seconds)
                last = (a, b)
            }
            let (a, b) = last!
            rows.append(
                Row(
                    beam: beam, batched_seconds: median(fast), one_by_one_seconds: median(slow),
                    speedup: median(slow) / median(fast), candidates: a.counts.candidates,
                    judge_calls: a.counts.judgeCalls, same_answer: a.text == b.text))
            if !json { printError("beam \(beam) done") }
        }
        if json { try printJSON(["rows": rows]); return }
        print("stage-level search · \(try engine.directory.path) · \(maxStageTokens) tokens per stage · median of \(repeats)")
        print("beam  candidates  judge calls  batched s  one-by-one s  speedup  same answer")
        for r in rows {
            print(
                String(
                    format: "%4d  %10d  %11d  %9.2f  %12.2f  %6.2fx  %@", r.beam, r.candidates, r.judge_calls,
                    r.batched_seconds, r.one_by_one_seconds, r.speedup, r.same_answer ? "yes" : "NO"))
        }
    }
}

/// Splits a request of N seeds into N one-seed requests run one after another.
struct OneCandidateAtATime: CandidateGenerator {
    let inner: EngineCandidateGenerator

    func generate(_ request: GenerateRequest) async throws -> [GeneratedCandidate] {
        var candidates: [GeneratedCandidate] = []
        for seed in request.seeds {
            var single = request
            single.seeds = [seed]
            candidates += try await inner.generate(single)
        }
        return candidates
    }
}
