import Foundation
import Search

/// Where an evaluation row's time went, stage by stage, summed over its items: each stage's wall time
/// (its generate phase and its tournament) and its calls' parts — candidate prefill and decode, judge
/// prefill and decode, and the time calls waited (see `CallCost`).
public struct SearchProfile: Sendable, Equatable {
    public struct Part: Sendable, Equatable {
        public var generateWallSeconds = 0.0
        public var judgeWallSeconds = 0.0
        public var cost = StageCost()
        public var judgeCalls = 0
    }

    /// Best-of-N's tournament over whole answers, which belongs to no stage.
    public static let finalTournament = "final"
    /// Part names in answer order.
    public static let partNames = Stage.allCases.map(\.rawValue) + [finalTournament]

    public var parts: [String: Part] = [:]
    public var items = 0
    /// Sum of the items' search wall times.
    public var searchSeconds = 0.0

    mutating func add(_ result: SearchResult) {
        items += 1
        searchSeconds += result.seconds
        for stage in result.stages {
            var part = parts[stage.stage.rawValue, default: Part()]
            part.generateWallSeconds += stage.generateSeconds
            part.judgeWallSeconds += stage.judgeSeconds
            part.cost = part.cost + stage.cost
            part.judgeCalls += stage.units.compactMap(\.tournament).flatMap(\.matches).reduce(0) { $0 + $1.calls.count }
            parts[stage.stage.rawValue] = part
        }
        if let final = result.finalTournament {
            var part = parts[Self.finalTournament, default: Part()]
            part.judgeWallSeconds += result.finalJudgeSeconds
            var cost = StageCost()
            cost.add(final)
            part.cost = part.cost + cost
            part.judgeCalls += final.matches.reduce(0) { $0 + $1.calls.count }
            parts[Self.finalTournament] = part
        }
    }

    /// The parts in answer order, then their total.
    var rows: [(name: String, part: Part)] {
        let present = Self.partNames.compactMap { name in parts[name].map { (name, $0) } }
        var total = Part()
        for (_, part) in present {
            total.generateWallSeconds += part.generateWallSeconds
            total.judgeWallSeconds += part.judgeWallSeconds
            total.cost = total.cost + part.cost
            total.judgeCalls += part.judgeCalls
        }
        return present + [("all", total)]
    }

    /// One table: a row per stage, milliseconds per item.
    public func text(title: String) -> String {
        let n = Double(max(items, 1))
        func ms(_ seconds: Double) -> String { String(format: "%.0f", seconds * 1000 / n) }
        func reused(_ reused: Int, of total: Int) -> String {
            total == 0 ? "-" : String(format: "%.0f/%.0f", Double(reused) / n, Double(total) / n)
        }
        let header = [
            "stage", "generate wall", "cand prefill", "cand decode", "cand waiting", "judge wall", "judge calls", "judge prefill",
            "judge decode", "judge waiting", "cand reused/prompt tok", "judge reused/prompt tok"
        ]
        let body = rows.map { name, part in
            [
                name, ms(part.generateWallSeconds), ms(part.cost.candidatePrefillSeconds), ms(part.cost.candidateDecodeSeconds),
                ms(part.cost.candidateWaitingSeconds), ms(part.judgeWallSeconds), String(format: "%.1f", Double(part.judgeCalls) / n),
                ms(part.cost.judgePrefillSeconds), ms(part.cost.judgeDecodeSeconds), ms(part.cost.judgeWaitingSeconds),
                reused(part.cost.candidateReusedPromptTokens, of: part.cost.candidatePromptTokens),
                reused(part.cost.judgeReusedPromptTokens, of: part.cost.judgePromptTokens)
            ]
        }
        return "\(title) · ms per item, mean of \(items) · search \(ms(searchSeconds)) ms\n" + ConsoleTable.render([header] + body)
    }
}
