import Foundation

/// Everything a search produced. Codable: it becomes the `--json` output and travels on the wire.
public struct SearchResult: Codable, Sendable, Hashable {
    /// The CONCLUSION text, trimmed: what the user is shown.
    public var answer: String
    /// The whole staged answer with tags.
    public var text: String
    public var method: SearchMethod
    public var beam: Int
    public var seed: UInt64
    public var tournament: TournamentKind
    public var judgeMode: VerdictMode
    public var judgeBothOrders: Bool
    public var stages: [StageRecord]
    /// Best-of-N's tournament over whole answers; nil for the other methods.
    public var finalTournament: TournamentRecord?
    public var counts: SearchCounts
    /// Best-of-N: time spent in the final tournament; 0 for the other methods.
    public var finalJudgeSeconds: Double
    public var seconds: Double

    /// Where the search's call time went: every stage's, and best-of-N's final tournament.
    public var cost: StageCost {
        var final = StageCost()
        final.add(finalTournament)
        return stages.map(\.cost).reduce(final, +)
    }

    /// JSON with snake_case keys (`forced_close`, `judge_calls`, …). Non-finite log-probabilities
    /// (a judge may report −∞) are written as the strings "inf", "-inf", "nan".
    public func jsonData(pretty: Bool = true) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        return try encoder.encode(self)
    }

    /// Reads what `jsonData` wrote.
    public init(jsonData data: Data) throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        self = try decoder.decode(SearchResult.self, from: data)
    }

    public init(
        answer: String, text: String, method: SearchMethod, beam: Int, seed: UInt64, tournament: TournamentKind,
        judgeMode: VerdictMode, judgeBothOrders: Bool, stages: [StageRecord], finalTournament: TournamentRecord?,
        counts: SearchCounts, finalJudgeSeconds: Double, seconds: Double
    ) {
        self.answer = answer
        self.text = text
        self.method = method
        self.beam = beam
        self.seed = seed
        self.tournament = tournament
        self.judgeMode = judgeMode
        self.judgeBothOrders = judgeBothOrders
        self.stages = stages
        self.finalTournament = finalTournament
        self.counts = counts
        self.finalJudgeSeconds = finalJudgeSeconds
        self.seconds = seconds
    }
}
