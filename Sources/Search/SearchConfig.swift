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
    /// Candidates per unit (N). `greedy` always uses 1.
    public var beam: Int = 2
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
        guard (1...Self.maxBeam).contains(config.beam) else {
            throw SearchError(.invalidConfiguration, "beam must be between 1 and \(Self.maxBeam), got \(beam)")
        }
        guard maxStageTokens >= 1 else {
            throw SearchError(.invalidConfiguration, "max stage tokens must be ≥ 1, got \(maxStageTokens)")
        }
        guard judgeMaxTokens >= 1 else {
            throw SearchError(.invalidConfiguration, "judge max tokens must be ≥ 1, got \(judgeMaxTokens)")
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
