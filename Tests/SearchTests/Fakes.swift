import Foundation

@testable import Search

// In-memory stand-ins for the engine, for testing the search alone. They live only in the test target.

/// Records calls and how many ran at the same time.
actor CallLog<Request: Sendable> {
    private(set) var requests: [Request] = []
    private(set) var maxConcurrent = 0
    private var running = 0

    func begin(_ request: Request) {
        requests.append(request)
        running += 1
        maxConcurrent = max(maxConcurrent, running)
    }

    func end() { running -= 1 }
}

/// A generator whose candidates come from a script: (request, position in the request) → candidate.
/// Scripts should depend on the seed, not the position, when a test needs placement independence.
struct ScriptedGenerator: CandidateGenerator {
    let log = CallLog<GenerateRequest>()
    let script: @Sendable (GenerateRequest, Int) -> GeneratedCandidate
    var delay: @Sendable (GenerateRequest) -> Duration = { _ in .zero }

    func generate(_ request: GenerateRequest) async throws -> [GeneratedCandidate] {
        await log.begin(request)
        let pause = delay(request)
        if pause > .zero { try await Task.sleep(for: pause) }
        await log.end()
        return request.seeds.indices.map { script(request, $0) }
    }
}

func candidate(_ text: String, tokens: Int? = nil, _ finish: FinishReason = .stop) -> GeneratedCandidate {
    GeneratedCandidate(
        text: text, tokenCount: tokens ?? max(1, text.count / 4), cumulativeLogprob: -Double(text.count) / 10,
        finishReason: finish)
}

/// The stage a generate request is working on: the last opening tag in its prefix.
func currentStage(_ request: GenerateRequest) -> Stage? {
    Stage.allCases.last { request.assistantPrefix.contains($0.openingTag) }
}

/// Templates whose prompt a fake judge can take apart again: the candidates sit between markers.
let testTemplatesJSON = #"""
    {
      "version": 1,
      "labels": ["Response 1", "Response 2"],
      "prompt": "Q={question}\n{hints}C={criterion}\n[Response 1]{candidate1}[/1]\n[Response 2]{candidate2}[/2]",
      "hint": "<hint {stage}>{text}</hint>",
      "verdictPrefix": "Better: Response",
      "choices": [" 1", " 2"],
      "criteria": {
        "summary": {"criterion": "crit-summary", "hints": []},
        "caption": {"criterion": "crit-caption", "hints": []},
        "reasoning": {"criterion": "crit-reasoning", "hints": ["caption"]},
        "conclusion": {"criterion": "crit-conclusion", "hints": ["caption", "reasoning"]},
        "answer": {"criterion": "crit-answer", "hints": []}
      }
    }
    """#

let testTemplates = try! JudgeTemplates(json: Data(testTemplatesJSON.utf8), source: "test templates")

/// The two candidates shown in a prompt rendered from `testTemplates`.
func shownCandidates(_ prompt: String) -> (String, String) {
    func between(_ open: String, _ close: String) -> String {
        guard let a = prompt.range(of: open), let b = prompt.range(of: close, range: a.upperBound..<prompt.endIndex) else {
            return ""
        }
        return String(prompt[a.upperBound..<b.lowerBound])
    }
    return (between("[Response 1]", "[/1]"), between("[Response 2]", "[/2]"))
}

/// A judge with a known taste. `prefer` sees the two shown texts and returns 1, 2, or nil (no opinion,
/// which yields an unparsable verdict in generate mode and equal log-probabilities in logprob mode).
/// `positionBias` is added to the first response's log-probability, as a position-biased model would.
struct FakeJudge: Judge {
    let log = CallLog<JudgeRequest>()
    var positionBias = 0.0
    var delay: Duration = .zero
    var verdictText: @Sendable (Int?) -> String = { choice in
        choice.map { "After comparing, the better response is Response \($0)." } ?? "I cannot decide."
    }
    let prefer: @Sendable (String, String) -> Int?

    func judge(_ request: JudgeRequest) async throws -> JudgeReply {
        await log.begin(request)
        if delay > .zero { try await Task.sleep(for: delay) }
        await log.end()
        let (first, second) = shownCandidates(request.prompt)
        let choice = prefer(first, second)
        switch request.mode {
        case .generate:
            return .verdict(text: verdictText(choice))
        case .logprob:
            let margin = choice == 1 ? 1.0 : choice == 2 ? -1.0 : 0
            return .choiceLogprobs(first: -2 + margin / 2 + positionBias, second: -2 - margin / 2)
        }
    }
}

/// Prefers the longer text (ties: no opinion).
let prefersLonger: @Sendable (String, String) -> Int? = { a, b in
    a.count == b.count ? nil : a.count > b.count ? 1 : 2
}

/// Prefers the text containing "KEY" (neither or both: no opinion).
let prefersKeyword: @Sendable (String, String) -> Int? = { a, b in
    let ka = a.contains("KEY"), kb = b.contains("KEY")
    return ka == kb ? nil : ka ? 1 : 2
}

func config(
    _ method: SearchMethod = .stage, beam: Int = 4, tournament: TournamentKind = .random,
    mode: VerdictMode = .logprob, seed: UInt64 = 42
) -> SearchConfig {
    var c = SearchConfig()
    c.method = method
    c.beam = beam
    c.tournament = tournament
    c.judgeMode = mode
    c.seed = seed
    return c
}

/// Entrants named by index with a text of the given length, for tournament tests.
func entrants(lengths: [Int]) -> [Entrant] {
    lengths.enumerated().map { Entrant(index: $0.offset, text: String(repeating: "x", count: $0.element)) }
}

/// A result without its timings, for comparing runs.
func withoutTimings(_ result: SearchResult) -> SearchResult {
    var r = result
    r.seconds = 0
    r.finalJudgeSeconds = 0
    for i in r.stages.indices {
        r.stages[i].generateSeconds = 0
        r.stages[i].judgeSeconds = 0
        for u in r.stages[i].units.indices {
            r.stages[i].units[u].generateCosts = nil
            r.stages[i].units[u].tournament = r.stages[i].units[u].tournament.map(withoutCosts)
        }
    }
    r.finalTournament = r.finalTournament.map(withoutCosts)
    return r
}

/// A tournament without its calls' timings, for comparing runs.
func withoutCosts(_ tournament: TournamentRecord) -> TournamentRecord {
    var t = tournament
    for m in t.matches.indices {
        for c in t.matches[m].calls.indices { t.matches[m].calls[c].cost = nil }
    }
    return t
}

/// Which (unit, candidate) a seed of job `job` belongs to, found by trying small indices; lets scripts
/// depend on the seed alone, as a real sampler does.
func seedCoordinates(_ seed: UInt64, job: UInt64) -> (unit: Int, candidate: Int) {
    for unit in 0..<64 {
        for candidate in 0..<16 where SeedDerivation.candidateSeed(job: job, unit: unit, candidate: candidate) == seed {
            return (unit, candidate)
        }
    }
    preconditionFailure("seed \(seed) is not a candidate seed of job \(job)")
}

/// Collects events in arrival order.
actor EventLog {
    private(set) var events: [SearchEvent] = []
    func append(_ event: SearchEvent) { events.append(event) }
    nonisolated var sink: SearchEventSink { { event in await self.append(event) } }
}
