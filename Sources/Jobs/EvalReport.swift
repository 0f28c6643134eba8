import Foundation
import Search

/// Right answers out of a number of questions.
public struct Tally: Sendable, Equatable {
    public var n = 0
    public var correct = 0

    public var accuracy: Double { n > 0 ? Double(correct) / Double(n) : 0 }

    mutating func add(_ right: Bool) {
        n += 1
        if right { correct += 1 }
    }
}

/// One method at one beam size over the whole dataset.
public struct EvalRow: Sendable, Equatable {
    public var run: EvalRun
    public var score = Tally()
    public var formatValid = 0
    public var judgeCalls = 0
    /// Candidate tokens generated (every candidate's, chosen or not).
    public var tokens = 0
    /// Tokens the judge wrote (generate-mode verdicts' checks; logprob verdicts write none).
    public var judgeTokens = 0
    /// Candidates scored by the scorer (`stage-beam`, `swires`).
    public var scoredCandidates = 0
    /// Wall time of the whole row.
    public var seconds = 0.0
    /// CPU time (user and system, all threads) of the process while the row ran, when the search ran
    /// in it: unlike wall time, close to an idle machine's on a busy one.
    public var cpuSeconds: Double?
    /// Items without a family are under `EvalReport.noFamily`.
    public var byFamily: [String: Tally] = [:]
    /// Every item's graded answer, in the dataset's order.
    public var answers: [EvalAnswer] = []
    /// Where the row's time went, stage by stage (`stagebeam eval --profile`).
    public var profile = SearchProfile()

    mutating func add(_ result: SearchResult, for item: EvalItem) {
        let correct = Grading.isCorrect(conclusion: result.answer, reference: item.answer)
        let formatValid = Grading.isFormatValid(result.stages)
        score.add(correct)
        byFamily[item.family ?? EvalReport.noFamily, default: Tally()].add(correct)
        if formatValid { self.formatValid += 1 }
        judgeCalls += result.counts.judgeCalls
        tokens += result.counts.generatedTokens
        scoredCandidates += result.counts.scoredCandidates
        let tournaments = result.stages.flatMap(\.units).compactMap(\.tournament) + [result.finalTournament].compactMap { $0 }
        judgeTokens += tournaments.flatMap(\.matches).flatMap(\.calls).reduce(0) { $0 + ($1.cost?.compute?.generatedTokens ?? 0) }
        profile.add(result)
        answers.append(
            EvalAnswer(
                method: run.method.rawValue, beam: run.beam, id: item.id, family: item.family,
                question: item.question, reference: item.answer,
                predicted: Grading.predictedAnswer(conclusion: result.answer), correct: correct,
                formatValid: formatValid, answer: result.text))
    }
}

/// One item's answer under one method, as `stagebeam eval --answers` writes it (a JSON line), so
/// failures can be read and analysed: which stage went wrong, per family.
public struct EvalAnswer: Codable, Sendable, Equatable {
    public var method: String
    public var beam: Int
    public var id: String
    public var family: String?
    public var question: String
    /// The reference answer.
    public var reference: String
    /// The answer read from the CONCLUSION (`Grading.predictedAnswer`); nil when it has no word.
    public var predicted: String?
    public var correct: Bool
    public var formatValid: Bool
    /// The whole staged answer, tags included.
    public var answer: String

    enum CodingKeys: String, CodingKey {
        case method, beam, id, family, question, reference, predicted, correct, answer
        case formatValid = "format_valid"
    }
}

/// The judge's accuracy on held-out pairs, each asked with the better text first and second.
public struct JudgeAccuracy: Sendable, Equatable {
    public struct Orders: Sendable, Equatable {
        public var betterFirst = Tally()
        public var betterSecond = Tally()
        /// The two calls read together as the search's `--judge-both-orders` does; undecided is wrong.
        public var bothOrders = Tally()
        public var pairs: Int { betterFirst.n }
        /// The mean of the two orders' accuracies: a judge that always answers "1" scores 0.5.
        public var accuracy: Double { (betterFirst.accuracy + betterSecond.accuracy) / 2 }

        mutating func add(betterFirst: Bool, betterSecond: Bool, bothOrders: Bool) {
            self.betterFirst.add(betterFirst)
            self.betterSecond.add(betterSecond)
            self.bothOrders.add(bothOrders)
        }
    }

    public var all = Orders()
    public var byTopic: [JudgeTopic: Orders] = [:]

    mutating func add(topic: JudgeTopic, betterFirst: Bool, betterSecond: Bool, bothOrders: Bool) {
        all.add(betterFirst: betterFirst, betterSecond: betterSecond, bothOrders: bothOrders)
        byTopic[topic, default: Orders()].add(betterFirst: betterFirst, betterSecond: betterSecond, bothOrders: bothOrders)
    }
}

/// What `stagebeam eval` reports: a table like the paper's (and per-family accuracy), or JSON.
public struct EvalReport: Sendable {
    public static let noFamily = "(none)"

    public var rows: [EvalRow]
    /// nil when no judge pairs were evaluated.
    public var judge: JudgeAccuracy?

    public init(rows: [EvalRow], judge: JudgeAccuracy?) {
        self.rows = rows
        self.judge = judge
    }

    var families: [String] { Set(rows.flatMap(\.byFamily.keys)).sorted() }

    /// `{"results": [{"method", "beam", "n", "correct", "accuracy", "format_valid", "judge_calls", "tokens", "judge_tokens",
    /// "scored_candidates", "seconds", "cpu_seconds" (null when the searches ran on a cluster)}],
    /// "by_family": {family: [{"method", "beam", "n", "correct", "accuracy"}]}, "judge": {"pairs",
    /// "accuracy_better_first", "accuracy_better_second", "accuracy", "accuracy_both_orders", "by_topic": {topic: {…the same five}}}
    /// or null}`.
    /// `format_valid` is a fraction of `n`; rows are in the order run.
    public func jsonData() throws -> Data {
        func orders(_ o: JudgeAccuracy.Orders) -> [String: Any] {
            [
                "pairs": o.pairs, "accuracy_better_first": o.betterFirst.accuracy,
                "accuracy_better_second": o.betterSecond.accuracy, "accuracy": o.accuracy,
                "accuracy_both_orders": o.bothOrders.accuracy
            ]
        }
        let results: [[String: Any]] = rows.map { row in
            [
                "method": row.run.method.rawValue, "beam": row.run.beam, "n": row.score.n, "correct": row.score.correct,
                "accuracy": row.score.accuracy, "format_valid": Tally(n: row.score.n, correct: row.formatValid).accuracy,
                "judge_calls": row.judgeCalls, "tokens": row.tokens, "judge_tokens": row.judgeTokens,
                "scored_candidates": row.scoredCandidates, "seconds": row.seconds, "cpu_seconds": row.cpuSeconds ?? NSNull()
            ]
        }
        var byFamily: [String: Any] = [:]
        for family in families {
            byFamily[family] = rows.compactMap { row in
                row.byFamily[family].map {
                    [
                        "method": row.run.method.rawValue, "beam": row.run.beam, "n": $0.n,
                        "correct": $0.correct, "accuracy": $0.accuracy
                    ]
                }
            }
        }
        var judgeObject: Any = NSNull()
        if let judge {
            var object = orders(judge.all)
            object["by_topic"] = Dictionary(uniqueKeysWithValues: judge.byTopic.map { ($0.key.rawValue, orders($0.value)) })
            judgeObject = object
        }
        return try JSONSerialization.data(
            withJSONObject: ["results": results, "by_family": byFamily, "judge": judgeObject],
            options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    /// One time-breakdown table per row (`SearchProfile`).
    public func profileText() -> String {
        rows.map { $0.profile.text(title: "\($0.run.method.rawValue) · beam \($0.run.beam)") }.joined(separator: "\n\n")
    }

    /// The results table, the per-family table (rows family, columns method/beam) and, with pairs,
    /// the judge table.
    public func text() -> String {
        func percent(_ tally: Tally) -> String { String(format: "%.1f%%", tally.accuracy * 100) }
        var sections = [
            ConsoleTable.render(
                [["method", "beam", "n", "correct", "accuracy", "format valid", "judge calls", "tokens", "judge tokens", "seconds"]]
                    + rows.map { row in
                        [
                            row.run.method.rawValue, String(row.run.beam), String(row.score.n), String(row.score.correct),
                            percent(row.score),
                            "\(row.formatValid)/\(row.score.n) (\(percent(Tally(n: row.score.n, correct: row.formatValid))))",
                            String(row.judgeCalls), String(row.tokens), String(row.judgeTokens), String(format: "%.1f", row.seconds)
                        ]
                    })
        ]
        sections.append(
            ConsoleTable.render(
                [["family"] + rows.map { "\($0.run.method.rawValue)/\($0.run.beam)" }]
                    + families.map { family in
                        [family] + rows.map { row in row.byFamily[family].map { "\($0.correct)/\($0.n) \(percent($0))" } ?? "-" }
                    }))
        if let judge {
            func cells(_ name: String, _ o: JudgeAccuracy.Orders) -> [String] {
                [
                    name, String(o.pairs), percent(o.betterFirst), percent(o.betterSecond), String(format: "%.1f%%", o.accuracy * 100),
                    percent(o.bothOrders)
                ]
            }
            sections.append(
                ConsoleTable.render(
                    [["judge topic", "pairs", "better first", "better second", "mean", "both orders"]]
                        + JudgeTopic.allCases.compactMap { topic in judge.byTopic[topic].map { cells(topic.rawValue, $0) } }
                        + [cells("all", judge.all)]))
        }
        return sections.joined(separator: "\n\n")
    }
}
