/// The search methods: the paper's stage-level beam search and the baselines it is compared with.
public enum SearchMethod: String, Codable, Sendable, Hashable, CaseIterable {
    /// Per stage: N candidates, a tournament, the winner appended (the default).
    case stage
    /// N whole answers, each written stage by stage from its own text; one tournament at the end,
    /// judged on the whole answer.
    case bestOfN = "best-of-n"
    /// Like `stage`, but the unit is one sentence of the current stage.
    case sentence
    /// One candidate per stage at temperature 0; no judge.
    case greedy
    /// Per stage: M candidates in all, scored one by one (a `Scorer`); the top N survive, and each
    /// survivor is continued with M/N candidates at the next stage. The best-scored conclusion wins.
    case stageBeam = "stage-beam"
    /// `stageBeam` with stage-wise retracing: when no candidate of a stage clears the reward threshold,
    /// the previous stage is regenerated and the stage tried again, at most C times per question
    /// (docs/search-methods.md).
    case swires

    /// Methods that rank candidates with a scorer instead of a pairwise tournament.
    public var usesScorer: Bool { self == .stageBeam || self == .swires }
}

/// How a unit's N candidates are reduced to one.
public enum TournamentKind: String, Codable, Sendable, Hashable, CaseIterable {
    /// The reference's: two random candidates, the winner goes back into the pool; N−1 sequential calls.
    case random
    /// Single elimination over a seeded shuffle; a round's matches run concurrently; byes for odd counts.
    case bracket
}

/// Every option of one search. Defaults follow the reference implementation where it has one.
public struct SearchConfig: Codable, Sendable, Hashable {
    public var method: SearchMethod = .stage
    /// Candidates per unit (N) of the tournament methods. `greedy` always uses 1.
    public var beam: Int = 2
    /// `stage`: the stages that get N candidates and a tournament, in the order the model writes
    /// them; the others are written greedily, one candidate at temperature 0 and no judge call. A
    /// search pays where candidates differ in substance: the built-in model's summaries and captions
    /// are nearly always right and its conclusion repeats its reasoning's answer (docs/performance.md).
    public var searchStages: [Stage] = Stage.allCases
    /// `stage-beam`, `swires`: candidates generated per stage (M), spread over the survivors.
    public var candidates: Int = 4
    /// `stage-beam`, `swires`: survivors kept per stage (N); a divisor of `candidates`.
    public var keep: Int = 2
    /// `swires`: retraces per question (C).
    public var retraces: Int = 3
    /// `swires`: the threshold of a stage is mean + z·std of its reward distribution.
    public var rewardZ: Double = RewardCalibration.defaultZ
    /// `swires`: a reward mean and standard deviation for every stage, replacing the calibration's.
    public var rewardMean: Double?
    public var rewardStd: Double?
    /// `swires`: the scorer's measured reward distribution per stage (the model's recommendations).
    public var rewardCalibration: RewardCalibration?
    public var tournament: TournamentKind = .random
    public var judgeMode: VerdictMode = .logprob
    /// Judge every match twice, A/B and B/A, and combine (cancels position bias).
    public var judgeBothOrders: Bool = false
    /// Token budget of one stage (for `sentence`, of all the sentences of one stage together).
    public var maxStageTokens: Int = 512
    public var sampling: Sampling = .reference
    /// Sampling of `generate`-mode verdicts (the reference samples them like candidates).
    public var judgeSampling: Sampling = .reference
    /// Token budget of a `generate`-mode verdict (cut to what the context leaves). The built-in
    /// model's check on a reasoning pair reads both answers and works the answer out again, word by
    /// word, before its verdict; for a comparison it first copies the question and restates what is
    /// asked: 186 tokens at the median, 414 at the 99th percentile, up to about 450 (3,000 training
    /// pairs).
    public var judgeMaxTokens: Int = 480
    public var seed: UInt64 = 0
    /// Write each stage's opening tag into the prefix so the model cannot skip or misspell it.
    public var forceTags: Bool = true
    /// Text between one stage's closing tag and the next one's opening tag in the assembled answer.
    public var stageSeparator: String = "\n\n"
    /// `sentence` method: a unit ends after the first of these (or at the stage's closing tag).
    /// A space or newline after the punctuation keeps "3.14" and "e.g.," inside their sentence.
    public var sentenceEnds: [String] = [". ", ".\n", "! ", "!\n", "? ", "?\n"]

    public init() {}

    /// The most candidates per unit: what the engine decodes in one request (its 64 logit rows), so
    /// that `run` and a cluster accept the same beams.
    public static let maxBeam = 64

    /// Checks every option and returns the configuration the search actually runs: `greedy` becomes
    /// beam 1 at temperature 0.
    public func validated() throws -> SearchConfig {
        var config = self
        if method == .greedy {
            config.beam = 1
            config.sampling = .greedy
        }
        guard !searchStages.isEmpty else {
            throw SearchError(.invalidConfiguration, "search stages must name at least one stage")
        }
        config.searchStages = Stage.allCases.filter(searchStages.contains)
        guard (1...Self.maxBeam).contains(config.beam) else {
            throw SearchError(.invalidConfiguration, "beam must be between 1 and \(Self.maxBeam), got \(beam)")
        }
        guard maxStageTokens >= 1 else {
            throw SearchError(.invalidConfiguration, "max stage tokens must be ≥ 1, got \(maxStageTokens)")
        }
        guard judgeMaxTokens >= 1 else {
            throw SearchError(.invalidConfiguration, "judge max tokens must be ≥ 1, got \(judgeMaxTokens)")
        }
        if method.usesScorer {
            guard (1...Self.maxBeam).contains(candidates) else {
                throw SearchError(.invalidConfiguration, "candidates must be between 1 and \(Self.maxBeam), got \(candidates)")
            }
            guard keep >= 1, keep <= candidates, candidates % keep == 0 else {
                throw SearchError(
                    .invalidConfiguration, "keep must be between 1 and candidates (\(candidates)) and divide it, got \(keep)")
            }
            guard retraces >= 0 else { throw SearchError(.invalidConfiguration, "retraces must be ≥ 0, got \(retraces)") }
            guard rewardZ.isFinite else { throw SearchError(.invalidConfiguration, "reward z must be finite, got \(rewardZ)") }
            if (rewardMean == nil) != (rewardStd == nil) {
                throw SearchError(.invalidConfiguration, "give the reward mean and standard deviation together")
            }
            if let rewardMean, let rewardStd {
                guard rewardMean.isFinite, rewardStd.isFinite, rewardStd >= 0 else {
                    throw SearchError(
                        .invalidConfiguration, "reward mean must be finite and std finite and ≥ 0, got \(rewardMean), \(rewardStd)")
                }
            }
            if method == .swires {
                for stage in SwiresPlan.checkedStages where rewardThreshold(stage) == nil {
                    throw SearchError(
                        .invalidConfiguration,
                        "swires needs a reward threshold for the \(stage.rawValue) stage: calibrate the scorer (stagebeam calibrate) or give the reward mean and std"
                    )
                }
            }
        }
        try config.sampling.validate("candidate")
        try judgeSampling.validate("judge")
        if method == .sentence {
            guard !sentenceEnds.isEmpty, sentenceEnds.allSatisfy({ !$0.isEmpty }) else {
                throw SearchError(.invalidConfiguration, "the sentence method needs non-empty sentence-end strings")
            }
        }
        return config
    }
}

extension SearchConfig {
    /// `swires`: the reward a candidate of `stage` must reach: mean + z·std, from the given mean and
    /// std or else the calibration's figures for that stage; nil when neither is known.
    public func rewardThreshold(_ stage: Stage) -> Double? {
        if let rewardMean, let rewardStd { return rewardMean + rewardZ * rewardStd }
        guard let figures = rewardCalibration?.stages[stage.rawValue] else { return nil }
        return figures.mean + rewardZ * figures.std
    }
}
