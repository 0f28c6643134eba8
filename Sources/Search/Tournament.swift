/// Plays one match between two entrants; `match` numbers matches from 0 in a fixed order (so judge
/// seeds do not depend on which concurrent match finishes first), `round` is the bracket round.
typealias PlayMatch = @Sendable (_ match: Int, _ round: Int, _ a: Entrant, _ b: Entrant) async throws -> MatchRecord

/// Plays a bracket round's matches together (the referee asks the judge for all their verdicts in one
/// batch); `firstMatch` numbers the first pair, the others follow in order. Records come back in the
/// pairs' order.
typealias PlayRound = @Sendable (_ firstMatch: Int, _ round: Int, _ pairs: [(Entrant, Entrant)]) async throws -> [MatchRecord]

/// Reduces a unit's candidates to one with N−1 matches.
enum Tournament {
    /// Each match played on its own; a bracket round's matches run concurrently.
    static func run(
        _ kind: TournamentKind, topic: JudgeTopic, entrants: [Entrant], seed: UInt64,
        play: @escaping PlayMatch
    ) async throws -> TournamentRecord {
        try await run(kind, topic: topic, entrants: entrants, seed: seed) { firstMatch, round, pairs in
            try await withThrowingTaskGroup(of: (Int, MatchRecord).self) { group in
                for (k, pair) in pairs.enumerated() {
                    group.addTask { (k, try await play(firstMatch + k, round, pair.0, pair.1)) }
                }
                var ordered = [MatchRecord?](repeating: nil, count: pairs.count)
                for try await (k, record) in group { ordered[k] = record }
                return ordered.map { $0! }
            }
        }
    }

    /// The random knockout plays one match at a time; a bracket hands each round to `playRound` whole.
    static func run(
        _ kind: TournamentKind, topic: JudgeTopic, entrants: [Entrant], seed: UInt64,
        playRound: @escaping PlayRound
    ) async throws -> TournamentRecord {
        precondition(!entrants.isEmpty, "a tournament needs entrants")
        var rng = SplitMix64(seed: seed)
        switch kind {
        case .random:
            return try await random(topic: topic, entrants, &rng) { match, round, a, b in
                try await playRound(match, round, [(a, b)])[0]
            }
        case .bracket: return try await bracket(topic: topic, entrants, &rng, playRound)
        }
    }

    /// The reference's knockout: draw two distinct entrants at random, judge them, put the winner back.
    static func random(
        topic: JudgeTopic, _ entrants: [Entrant], _ rng: inout SplitMix64,
        _ play: @escaping PlayMatch
    ) async throws -> TournamentRecord {
        var pool = entrants
        var matches: [MatchRecord] = []
        while pool.count > 1 {
            let i = rng.uniform(pool.count)
            var j = rng.uniform(pool.count - 1)
            if j >= i { j += 1 }
            let record = try await play(matches.count, matches.count, pool[i], pool[j])
            matches.append(record)
            pool.remove(at: record.winner == pool[i].index ? j : i)
        }
        return TournamentRecord(kind: .random, topic: topic, matches: matches, rounds: matches.count, winner: pool[0].index)
    }

    /// Single elimination over a seeded shuffle. Each round pairs neighbours; with an odd count the last
    /// entrant has a bye. A round's matches are played together. ⌈log2 N⌉ rounds, N−1 matches.
    static func bracket(
        topic: JudgeTopic, _ entrants: [Entrant], _ rng: inout SplitMix64,
        _ playRound: @escaping PlayRound
    ) async throws -> TournamentRecord {
        var field = entrants
        if field.count > 1 {
            for i in stride(from: field.count - 1, to: 0, by: -1) { field.swapAt(i, rng.uniform(i + 1)) }
        }
        var matches: [MatchRecord] = []
        var round = 0
        while field.count > 1 {
            let pairs = stride(from: 0, to: field.count - 1, by: 2).map { (field[$0], field[$0 + 1]) }
            let results = try await playRound(matches.count, round, pairs)
            precondition(results.count == pairs.count, "a round's play returned \(results.count) records for \(pairs.count) pairs")
            matches += results
            var next = zip(pairs, results).map { pair, record in record.winner == pair.0.index ? pair.0 : pair.1 }
            if field.count % 2 == 1 { next.append(field[field.count - 1]) }
            field = next
            round += 1
        }
        return TournamentRecord(kind: .bracket, topic: topic, matches: matches, rounds: round, winner: field[0].index)
    }
}
