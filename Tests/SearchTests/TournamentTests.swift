import Foundation
import Testing

@testable import Search

/// Tournaments driven by a referee over the fake judge, as the search drives them.
@Suite struct TournamentTests {
    func play(_ judge: FakeJudge, mode: VerdictMode = .logprob, bothOrders: Bool = false) -> PlayMatch {
        var c = config(mode: mode)
        c.judgeBothOrders = bothOrders
        let referee = Referee(judge: judge, templates: testTemplates, config: c, question: "q", imageRef: nil, events: nil)
        return { match, round, a, b in
            try await referee.play(unit: 0, topic: .summary, hints: [:], match: match, round: round, a: a, b: b)
        }
    }

    func pairs(_ record: TournamentRecord) -> [[Int]] { record.matches.map { [$0.a, $0.b] } }

    @Test(arguments: TournamentKind.allCases, [1, 2, 3, 5, 8, 9])
    func nMinusOneMatchesAndTheBestWins(kind: TournamentKind, n: Int) async throws {
        let judge = FakeJudge(prefer: prefersLonger)
        let lengths = (0..<n).map { ($0 * 7 + 2) % n + 1 } // a permutation of 1...n (7 is prime to every n here)
        let best = lengths.indices.max { lengths[$0] < lengths[$1] }!
        let record = try await Tournament.run(
            kind, topic: .summary, entrants: entrants(lengths: lengths), seed: 5,
            play: play(judge))
        #expect(record.winner == best)
        #expect(record.matches.count == n - 1)
        #expect(await judge.log.requests.count == n - 1)
        #expect(record.matches.map(\.match) == Array(0..<(n - 1)))
        // Every candidate but the winner loses exactly once.
        let losers = record.matches.map { $0.winner == $0.a ? $0.b : $0.a }
        #expect(Set(losers) == Set(lengths.indices).subtracting([best]))
        if kind == .bracket {
            let rounds = n == 1 ? 0 : Int((Double(n)).log2.rounded(.up))
            #expect(record.rounds == rounds)
            #expect(Set(record.matches.map(\.round)) == Set(0..<rounds))
        }
    }

    @Test func bracketRunsARoundsMatchesConcurrently() async throws {
        let judge = FakeJudge(delay: .milliseconds(30), prefer: prefersLonger)
        let record = try await Tournament.run(
            .bracket, topic: .summary, entrants: entrants(lengths: [1, 2, 3, 4, 5, 6, 7, 8]),
            seed: 1, play: play(judge))
        #expect(record.rounds == 3)
        #expect(record.matches.filter { $0.round == 0 }.count == 4)
        #expect(await judge.log.maxConcurrent == 4)
    }

    @Test func randomTournamentIsSequential() async throws {
        let judge = FakeJudge(delay: .milliseconds(5), prefer: prefersLonger)
        _ = try await Tournament.run(
            .random, topic: .summary, entrants: entrants(lengths: [1, 2, 3, 4, 5, 6]),
            seed: 1, play: play(judge))
        #expect(await judge.log.maxConcurrent == 1)
    }

    @Test(arguments: TournamentKind.allCases)
    func pairingIsDeterministicBySeedAndDiffersAcrossSeeds(kind: TournamentKind) async throws {
        let field = entrants(lengths: [4, 9, 2, 7, 5, 1, 8, 3])
        func pairing(_ seed: UInt64) async throws -> [[Int]] {
            pairs(
                try await Tournament.run(
                    kind, topic: .summary, entrants: field, seed: seed,
                    play: play(FakeJudge(prefer: prefersLonger))))
        }
        let first = try await pairing(11)
        #expect(try await pairing(11) == first)
        var others: [[[Int]]] = []
        for seed: UInt64 in 12...16 { others.append(try await pairing(seed)) }
        #expect(others.contains { $0 != first })
    }

    @Test func bracketResultDoesNotDependOnWhichMatchFinishesFirst() async throws {
        // Matches of a round finish in reverse order of their index (longer texts judged faster).
        let slowFirst = FakeJudge(prefer: prefersLonger)
        let judgeSlowly: PlayMatch = { match, round, a, b in
            try await Task.sleep(for: .milliseconds(40 - 10 * (match % 4)))
            return try await play(slowFirst)(match, round, a, b)
        }
        let field = entrants(lengths: [4, 9, 2, 7, 5, 1, 8, 3])
        let slow = try await Tournament.run(.bracket, topic: .summary, entrants: field, seed: 3, play: judgeSlowly)
        let fast = try await Tournament.run(
            .bracket, topic: .summary, entrants: field, seed: 3, play: play(FakeJudge(prefer: prefersLonger)))
        #expect(withoutCosts(slow) == withoutCosts(fast))
    }
}

extension Double {
    var log2: Double { Foundation.log2(self) }
}
