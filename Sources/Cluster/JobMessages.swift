import Foundation
import Search
import Wire

// The wire forms of a job's progress and result, made from the search's events and record.

extension Stagebeam_V1_JobEvent {
    /// `texts` holds the unit's candidate texts from its `candidatesReady` event (for the winner's text);
    /// `beam` is the job's N, which a `StageStarted` announces.
    init(jobID: String, event: SearchEvent, texts: [Int: String], beam: Int) {
        self.init()
        self.jobID = jobID
        switch event {
        case .stageStarted(let stage):
            self.stage = stage.wire
            step = UInt32(stage.index)
            var started = Stagebeam_V1_StageStarted()
            started.candidates = UInt32(clamping: beam)
            stageStarted = started
        case .candidatesReady(let stage, let unit, let candidates):
            self.stage = stage.wire
            step = UInt32(unit)
            var ready = Stagebeam_V1_CandidatesReady()
            ready.candidates = candidates.map { candidate in
                var summary = Stagebeam_V1_CandidateSummary()
                summary.index = UInt32(candidate.index)
                summary.text = candidate.text
                summary.seed = candidate.seed
                summary.tokenCount = UInt32(candidate.tokens)
                summary.forcedClose = candidate.forcedClose
                summary.workerID = candidate.worker ?? ""
                return summary
            }
            candidatesReady = ready
        case .verdict(let topic, let unit, let match):
            stage = topic.wire
            step = UInt32(unit)
            var verdict = Stagebeam_V1_Verdict()
            verdict.firstIndex = UInt32(match.a)
            verdict.secondIndex = UInt32(match.b)
            verdict.winnerIndex = UInt32(match.winner)
            if let call = match.calls.first {
                switch call.verdict {
                case .first: verdict.choice = .first
                case .second: verdict.choice = .second
                // The wire's choices have no "did not fit": for a client both are verdicts it cannot use.
                case .unparsable, .promptTooLong: verdict.choice = .unparsable
                case .tie: verdict.choice = .unspecified
                }
                if case .choiceLogprobs(let first, let second) = call.reply, first.isFinite, second.isFinite {
                    // Renormalised over the two choices: p1 = 1 / (1 + e^(l2 − l1)).
                    verdict.probabilityFirst = 1 / (1 + exp(second - first))
                    verdict.probabilitySecond = 1 - verdict.probabilityFirst
                }
            }
            self.verdict = verdict
        case .winner(let topic, let unit, let candidate):
            stage = topic.wire
            step = UInt32(unit)
            var winner = Stagebeam_V1_Winner()
            winner.index = UInt32(candidate)
            winner.text = texts[candidate] ?? ""
            self.winner = winner
        case .scored(let stage, let unit, let candidates, let scores):
            self.stage = stage.wire
            step = UInt32(unit)
            var scored = Stagebeam_V1_Scored()
            scored.indices = candidates.map { UInt32($0) }
            scored.scores = scores
            self.scored = scored
        case .survivors(let stage, let unit, let candidates):
            self.stage = stage.wire
            step = UInt32(unit)
            var survivors = Stagebeam_V1_Survivors()
            survivors.indices = candidates.map { UInt32($0) }
            self.survivors = survivors
        case .retraced(let record):
            stage = record.stage.wire
            step = UInt32(record.stage.index)
            var retraced = Stagebeam_V1_Retraced()
            retraced.attempt = UInt32(record.attempt)
            retraced.threshold = record.threshold
            retraced.bestBefore = record.bestBefore
            retraced.bestAfter = record.bestAfter
            retraced.regenerated = record.regenerated.map { UInt32($0) }
            retraced.candidates = record.candidates.map { UInt32($0) }
            self.retraced = retraced
        }
    }
}

extension Stagebeam_V1_JobResult {
    /// A succeeded job's result; it always carries the full search record (the journal keeps it so a
    /// resubmission can be answered with or without it).
    public init(jobID: String, search: SearchResult, redispatched: Int, queueMs: Double, totalMs: Double) throws {
        self.init()
        self.jobID = jobID
        status = .succeeded
        answer = search.answer
        stages = search.stages.enumerated().map { step, record in
            var summary = Stagebeam_V1_StageSummary()
            summary.stage = record.stage.wire
            summary.step = UInt32(step)
            summary.text = record.text
            summary.candidates = UInt32(record.units.reduce(0) { $0 + $1.candidates.count })
            summary.comparisons = UInt32(record.units.reduce(0) { $0 + ($1.tournament?.matches.count ?? 0) })
            summary.forcedClose = record.forcedClose
            summary.generateMs = record.generateSeconds * 1000
            summary.judgeMs = record.judgeSeconds * 1000
            let cost = record.cost
            summary.candidatePrefillMs = cost.candidatePrefillSeconds * 1000
            summary.candidateDecodeMs = cost.candidateDecodeSeconds * 1000
            summary.candidateWaitingMs = cost.candidateWaitingSeconds * 1000
            summary.judgePrefillMs = cost.judgePrefillSeconds * 1000
            summary.judgeDecodeMs = cost.judgeDecodeSeconds * 1000
            summary.judgeWaitingMs = cost.judgeWaitingSeconds * 1000
            summary.candidatePromptTokens = UInt32(clamping: cost.candidatePromptTokens)
            summary.candidateReusedPrefixTokens = UInt32(clamping: cost.candidateReusedPromptTokens)
            summary.judgePromptTokens = UInt32(clamping: cost.judgePromptTokens)
            summary.judgeReusedPrefixTokens = UInt32(clamping: cost.judgeReusedPromptTokens)
            if let unit = record.units.first, let scores = unit.scores {
                summary.survivors = (unit.survivors ?? []).map { UInt32($0) }
                summary.bestScore = scores.max() ?? -.infinity
                summary.retraces = UInt32(search.reward?.retraces.filter { $0.stage == record.stage }.count ?? 0)
            }
            return summary
        }
        var counts = Stagebeam_V1_JobCounts()
        counts.candidates = UInt32(search.counts.candidates)
        counts.generatedTokens = UInt64(search.counts.generatedTokens)
        counts.judgeCalls = UInt32(search.counts.judgeCalls)
        counts.unparsableVerdicts = UInt32(search.counts.unparsableVerdicts)
        counts.redispatchedRequests = UInt32(redispatched)
        let cost = search.cost
        counts.candidatePrefillMs = cost.candidatePrefillSeconds * 1000
        counts.candidateDecodeMs = cost.candidateDecodeSeconds * 1000
        counts.candidateWaitingMs = cost.candidateWaitingSeconds * 1000
        counts.judgePrefillMs = cost.judgePrefillSeconds * 1000
        counts.judgeDecodeMs = cost.judgeDecodeSeconds * 1000
        counts.judgeWaitingMs = cost.judgeWaitingSeconds * 1000
        counts.judgePromptTokens = UInt64(cost.judgePromptTokens)
        counts.judgeReusedPrefixTokens = UInt64(cost.judgeReusedPromptTokens)
        counts.scoreCalls = UInt32(search.counts.scoreCalls)
        counts.scoredCandidates = UInt32(search.counts.scoredCandidates)
        counts.retraces = UInt32(search.counts.retraces)
        if let reward = search.reward { winnerScore = reward.winnerScore }
        self.counts = counts
        self.queueMs = queueMs
        self.totalMs = totalMs
        searchRecordJson = try search.jsonData(pretty: false)
    }

    public init(jobID: String, failure: ClusterError, redispatched: Int, queueMs: Double, totalMs: Double) {
        self.init()
        self.jobID = jobID
        status = failure.code == .cancelled ? .cancelled : .failed
        var error = failure
        error.jobID = jobID
        self.error = error.wire
        counts.redispatchedRequests = UInt32(redispatched)
        self.queueMs = queueMs
        self.totalMs = totalMs
    }
}
