/// One search in progress: the question and the helpers the methods share.
struct SearchRun: Sendable {
    struct Outcome {
        var answer: String
        var text: String
        var stages: [StageRecord]
        var finalTournament: TournamentRecord? = nil
        var finalJudgeSeconds: Double = 0
        var reward: RewardSearchRecord? = nil
    }

    let search: StageBeamSearch
    let question: String
    let imageRef: String?
    let events: SearchEventSink?

    var config: SearchConfig { search.config }

    /// Text before a stage's opening tag: the answer so far plus the separator.
    func textBefore(_ stage: Stage, answerSoFar: String) -> String {
        stage == .summary ? answerSoFar : answerSoFar + config.stageSeparator
    }

    /// Generates the given candidates of one unit from one prefix; their seeds come from the unit and
    /// each candidate's index. Also returns what the call cost. `sampling`: the candidates' (default:
    /// the configuration's).
    func generate(
        prefix: String, unit: Int, candidates: [Int], stop: [String],
        maxNewTokens: Int, sampling: Sampling? = nil
    ) async throws -> (candidates: [(seed: UInt64, candidate: GeneratedCandidate)], cost: CallCost) {
        let seeds = candidates.map { SeedDerivation.candidateSeed(job: config.seed, unit: unit, candidate: $0) }
        let request = GenerateRequest(
            question: question, imageRef: imageRef, assistantPrefix: prefix, seeds: seeds,
            stop: stop, maxNewTokens: maxNewTokens, sampling: sampling ?? config.sampling)
        let start = ContinuousClock.now
        let measured = try await search.generator.generateMeasured(request)
        let cost = CallCost(wallSeconds: seconds(since: start), compute: measured.cost)
        let generated = measured.candidates
        guard generated.count == seeds.count else {
            throw SearchError(.generatorContract, "generator returned \(generated.count) candidates for \(seeds.count) seeds")
        }
        if let bad = generated.first(where: { $0.tokenCount < 0 }) {
            throw SearchError(.generatorContract, "generator reported a negative token count (\(bad.tokenCount))")
        }
        return (Array(zip(seeds, generated)), cost)
    }

    func record(_ generated: GeneratedCandidate, index: Int, seed: UInt64, cut: UnitCut) -> CandidateRecord {
        CandidateRecord(
            index: index, seed: seed, rawText: generated.text, text: cut.text, tokens: generated.tokenCount,
            cumulativeLogprob: generated.cumulativeLogprob, finishReason: generated.finishReason,
            worker: generated.worker, ending: cut.ending, forcedClose: cut.ending == .forcedClose,
            trimmedTail: cut.trimmedTail)
    }

    /// The unit's tournament, or nil when there is a single candidate (nothing to judge).
    func tournament(unit: Int, topic: JudgeTopic, hints: [Stage: String], entrants: [Entrant]) async throws -> TournamentRecord? {
        guard entrants.count > 1 else { return nil }
        guard let judge = search.judge else {
            throw SearchError(.judgeMissing, "\(entrants.count) candidates to compare and no judge")
        }
        let referee = Referee(
            judge: judge, templates: search.templates, config: config, question: question,
            imageRef: imageRef, events: events)
        return try await Tournament.run(
            config.tournament, topic: topic, entrants: entrants,
            seed: SeedDerivation.pairingSeed(job: config.seed, unit: unit)
        ) { firstMatch, round, pairs in
            try await referee.playRound(unit: unit, topic: topic, hints: hints, firstMatch: firstMatch, round: round, pairs: pairs)
        }
    }
}

extension String {
    var trimmed: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
