/// One candidate as the search saw it: what the generator returned and what the search kept.
public struct CandidateRecord: Codable, Sendable, Hashable {
    public var index: Int
    public var seed: UInt64
    /// The continuation exactly as generated.
    public var rawText: String
    /// The kept unit text, without tags (a stage body, a sentence, or a whole best-of-N stage body).
    public var text: String
    public var tokens: Int
    public var cumulativeLogprob: Double
    public var finishReason: FinishReason
    public var worker: String?
    public var ending: UnitEnding
    /// The search closed the stage because the candidate did not (see `UnitEnding.forcedClose`).
    public var forcedClose: Bool
    /// Text after the cut (later stages, a second sentence) was dropped.
    public var trimmedTail: Bool
}

/// One judge call of a match.
public struct JudgeCallRecord: Codable, Sendable, Hashable {
    public var order: JudgeOrder
    public var seed: UInt64
    public var reply: JudgeReply
    /// The reply read in the positions this call showed.
    public var verdict: CallVerdict
    /// Wall time and engine time of the call (nil in records written before it was kept).
    public var cost: CallCost?

    public init(order: JudgeOrder, seed: UInt64, reply: JudgeReply, verdict: CallVerdict, cost: CallCost? = nil) {
        self.order = order
        self.seed = seed
        self.reply = reply
        self.verdict = verdict
        self.cost = cost
    }
}

/// How a match was decided.
public enum MatchOutcome: String, Codable, Sendable, Hashable {
    /// The judge preferred one candidate.
    case judged
    /// No usable preference (unparsable verdicts, a tie, a prompt too long for the judge, or the two
    /// orders disagreeing): the candidate with the lower index wins, and the match is flagged so. A
    /// fixed rule that does not depend on the order the candidates were shown in.
    case undecided
    /// Both candidates kept the same text, so there was nothing to judge and no judge call was made.
    case identical
}

/// One comparison of two candidates (`a` is shown first in the forward order).
public struct MatchRecord: Codable, Sendable, Hashable {
    public var match: Int
    public var round: Int
    public var a: Int
    public var b: Int
    public var calls: [JudgeCallRecord]
    public var outcome: MatchOutcome
    public var winner: Int
}

public struct TournamentRecord: Codable, Sendable, Hashable {
    public var kind: TournamentKind
    public var topic: JudgeTopic
    public var matches: [MatchRecord]
    /// Random: one per match. Bracket: ⌈log2 N⌉.
    public var rounds: Int
    public var winner: Int
}

/// One generation unit: a stage (stage, greedy, best-of-N) or a sentence (sentence method).
public struct UnitRecord: Codable, Sendable, Hashable {
    public var unit: Int
    public var candidates: [CandidateRecord]
    /// nil when there was one candidate, and for best-of-N (whose tournament comes at the end).
    public var tournament: TournamentRecord?
    /// The chosen candidate (best-of-N: the final winner's).
    public var winner: Int
    /// The unit's generate calls (best-of-N: one per distinct prefix), as the search timed them.
    public var generateCosts: [CallCost]? = nil
}

public struct StageRecord: Codable, Sendable, Hashable {
    public var stage: Stage
    /// The chosen stage text with its opening and closing tags, as it appears in the answer.
    public var text: String
    /// The chosen text did not close the stage itself; the search did.
    public var forcedClose: Bool
    public var units: [UnitRecord]
    public var generateSeconds: Double
    public var judgeSeconds: Double

    /// Where the stage's call time went: its units' generate calls and tournaments (best-of-N's final
    /// tournament is the result's, not a stage's).
    public var cost: StageCost {
        var cost = StageCost()
        for unit in units {
            for call in unit.generateCosts ?? [] { cost.addGenerate(call) }
            cost.add(unit.tournament)
        }
        return cost
    }
}

public struct SearchCounts: Codable, Sendable, Hashable {
    public var candidates = 0
    public var generatedTokens = 0
    public var forcedCloses = 0
    public var judgeCalls = 0
    public var unparsableVerdicts = 0
    /// Judge calls whose prompt did not fit the judge's context (their matches are undecided).
    public var judgePromptsTooLong = 0
    public var undecidedMatches = 0
}
