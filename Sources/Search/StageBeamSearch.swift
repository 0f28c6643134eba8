/// Stage-level beam search and its baselines, over any generator and judge.
///
/// How it behaves where the method leaves room for choice:
/// - Units: a stage (`stage`, `greedy`, `best-of-n`, `stage-beam`, `swires`) or a sentence of the
///   current stage (`sentence`).
///   Unit i's candidates get seeds `SeedDerivation.candidateSeed(job, i, candidate)`.
/// - Each candidate is cut by `UnitCutter`: at its stage's closing tag, or at any other stage's tag
///   (it skipped ahead: the rest is dropped and the search closes the stage, `forcedClose`), or, with
///   no tag before the budget or end of sequence, closed by the search (`forcedClose`). The chosen
///   text is rebuilt as opening tag + body + closing tag, stages joined by `stageSeparator`.
/// - The judge sees each candidate's body (trimmed); in `sentence` the stage so far plus the sentence;
///   in `best-of-n` the whole answer, judged once at the end on the `answer` criterion.
/// - A match whose verdict cannot be used (unparsable text, a logprob tie, orders that disagree, a
///   prompt too long for the judge's context) is `undecided`: the lower candidate index wins, the
///   match is flagged and counted. Two candidates with identical text are not sent to the judge.
///
/// ```
/// let search = try StageBeamSearch(generator: engine, judge: engine, config: config)
/// let result = try await search.run(question: "How many apples?", imageRef: imageHash)
/// ```
public struct StageBeamSearch: Sendable {
    public let generator: any CandidateGenerator
    public let judge: (any Judge)?
    public let templates: JudgeTemplates
    /// Scores candidates for `stage-beam` and `swires`.
    public let scorer: (any Scorer)?
    public let rewardTemplates: RewardTemplates
    /// The configuration as run (see `SearchConfig.validated()`).
    public let config: SearchConfig

    /// - judge: may be nil only when no unit has more than one candidate (greedy, or beam 1), and for
    ///   the scored methods.
    /// - scorer: needed by `stage-beam` and `swires` only.
    public init(
        generator: any CandidateGenerator, judge: (any Judge)?, templates: JudgeTemplates = .builtIn,
        scorer: (any Scorer)? = nil, rewardTemplates: RewardTemplates = .builtIn, config: SearchConfig
    ) throws {
        let config = try config.validated()
        if judge == nil, config.beam > 1, !config.method.usesScorer {
            throw SearchError(.judgeMissing, "method \(config.method.rawValue) with beam \(config.beam) needs a judge")
        }
        if scorer == nil, config.method.usesScorer {
            throw SearchError(.scorerMissing, "method \(config.method.rawValue) needs a scorer")
        }
        self.generator = generator
        self.judge = judge
        self.templates = templates
        self.scorer = scorer
        self.rewardTemplates = rewardTemplates
        self.config = config
    }

    public func run(question: String, imageRef: String? = nil, events: SearchEventSink? = nil) async throws -> SearchResult {
        let run = SearchRun(search: self, question: question, imageRef: imageRef, events: events)
        let start = ContinuousClock.now
        let outcome: SearchRun.Outcome
        switch config.method {
        case .stage, .greedy: outcome = try await run.stageMethod()
        case .sentence: outcome = try await run.sentenceMethod()
        case .bestOfN: outcome = try await run.bestOfNMethod()
        case .stageBeam, .swires: outcome = try await run.rewardMethod()
        }
        var result = SearchResult(
            answer: outcome.answer, text: outcome.text, method: config.method,
            beam: config.method.usesScorer ? config.candidates : config.beam, seed: config.seed,
            tournament: config.tournament, judgeMode: config.judgeMode, judgeBothOrders: config.judgeBothOrders,
            stages: outcome.stages, finalTournament: outcome.finalTournament,
            counts: SearchCounts(
                stages: outcome.stages, finalTournament: outcome.finalTournament, retraces: outcome.reward?.retraces ?? []),
            finalJudgeSeconds: outcome.finalJudgeSeconds, seconds: seconds(since: start))
        result.reward = outcome.reward
        return result
    }
}

extension SearchCounts {
    init(stages: [StageRecord], finalTournament: TournamentRecord?, retraces: [RetraceRecord] = []) {
        self.init()
        let units = stages.flatMap(\.units)
        // A scored stage is one scorer call, and each retrace adds two (the previous stage again, then this one).
        scoreCalls = units.filter { $0.scores != nil }.count + 2 * retraces.count
        scoredCandidates = units.reduce(0) { $0 + ($1.scores?.count ?? 0) }
        self.retraces = retraces.count
        for candidate in units.flatMap(\.candidates) {
            candidates += 1
            generatedTokens += candidate.tokens
            if candidate.forcedClose { forcedCloses += 1 }
        }
        for match in (units.compactMap(\.tournament) + [finalTournament].compactMap { $0 }).flatMap(\.matches) {
            judgeCalls += match.calls.count
            unparsableVerdicts += match.calls.filter { $0.verdict == .unparsable }.count
            judgePromptsTooLong += match.calls.filter { $0.verdict == .promptTooLong }.count
            if match.outcome == .undecided { undecidedMatches += 1 }
        }
    }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = (ContinuousClock.now - start).components
    return Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
}
