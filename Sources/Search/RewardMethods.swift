/// Where `swires` may go back: the stages a retrace regenerates, and the stages whose candidates are
/// checked against the threshold (those right after a regenerable stage). The summary is never
/// regenerated: it only restates the question, and is rarely what goes wrong.
public enum SwiresPlan {
    public static let regenerable: [Stage] = [.caption, .reasoning]
    public static let checkedStages: [Stage] = [.reasoning, .conclusion]
}

extension SearchRun {
    /// A scored candidate of one stage and the line of text it ends.
    struct Scored {
        var record: CandidateRecord
        /// Its parent: the candidate of the previous stage it continues (nil at the first stage).
        var parent: Int?
        /// The stage as it enters the answer: opening tag, kept text, closing tag.
        var stageText: String
        /// The assistant's text through this stage.
        var answer: String
        var score: Double
    }

    /// All candidates of one stage (a retrace adds more) and the time spent on them.
    struct Pool {
        var members: [Scored] = []
        var survivors: [Int] = []
        var generateSeconds = 0.0
        var scoreSeconds = 0.0
        var generateCosts: [CallCost] = []
    }

    /// `stage-beam` and `swires` (docs/search-methods.md has the pseudocode).
    func rewardMethod() async throws -> Outcome {
        let stages = Stage.allCases
        var pools = [Pool](repeating: Pool(), count: stages.count)
        var retraces: [RetraceRecord] = []
        var thresholds: [String: Double] = [:]
        var parents: [Int?] = [nil]
        for stage in stages {
            await events?(.stageStarted(stage: stage))
            let s = stage.index
            try await extend(&pools, stage: stage, parents: parents)
            if config.method == .swires, SwiresPlan.checkedStages.contains(stage), let threshold = config.rewardThreshold(stage) {
                thresholds[stage.rawValue] = threshold
                let previous = stages[s - 1]
                while retraces.count < config.retraces, best(pools[s].members) < threshold {
                    let bestBefore = best(pools[s].members)
                    // The previous stage is regenerated from the parents of its survivors, best survivor's first.
                    var grandparents: [Int?] = []
                    for survivor in pools[s - 1].survivors {
                        let parent = pools[s - 1].members[survivor].parent
                        if !grandparents.contains(parent) { grandparents.append(parent) }
                    }
                    let regeneratedFrom = pools[s - 1].members.count
                    try await extend(&pools, stage: previous, parents: grandparents)
                    let regenerated = Array(regeneratedFrom..<pools[s - 1].members.count)
                    let newParents = ranked(pools[s - 1].members, among: regenerated, keep: config.keep)
                    let firstNew = pools[s].members.count
                    try await extend(&pools, stage: stage, parents: newParents)
                    let retrace = RetraceRecord(
                        stage: stage, attempt: retraces.count + 1, threshold: threshold, bestBefore: bestBefore,
                        regenerated: regenerated, regeneratedSurvivors: newParents,
                        candidates: Array(firstNew..<pools[s].members.count), bestAfter: best(pools[s].members))
                    retraces.append(retrace)
                    await events?(.retraced(retrace))
                }
            }
            let survivors = ranked(pools[s].members, among: Array(pools[s].members.indices), keep: config.keep)
            pools[s].survivors = survivors
            await events?(.survivors(stage: stage, unit: s, candidates: survivors))
            parents = survivors
        }

        // The final answer: the best-scored conclusion; its line back through the parents gives
        // each stage's chosen candidate.
        let last = stages.count - 1
        var chosen = [Int](repeating: 0, count: stages.count)
        chosen[last] = pools[last].survivors[0]
        for s in stride(from: last, to: 0, by: -1) { chosen[s - 1] = pools[s].members[chosen[s]].parent ?? 0 }
        let records = stages.map { stage in
            let pool = pools[stage.index]
            let winner = pool.members[chosen[stage.index]]
            return StageRecord(
                stage: stage, text: winner.stageText, forcedClose: winner.record.forcedClose,
                units: [
                    UnitRecord(
                        unit: stage.index, candidates: pool.members.map(\.record), tournament: nil, winner: winner.record.index,
                        generateCosts: pool.generateCosts, scores: pool.members.map(\.score),
                        parents: stage.index == 0 ? nil : pool.members.map { $0.parent ?? 0 },
                        survivors: pool.survivors)
                ],
                generateSeconds: pool.generateSeconds, judgeSeconds: pool.scoreSeconds)
        }
        let final = pools[last].members[chosen[last]]
        await events?(.winner(topic: .conclusion, unit: last, candidate: chosen[last]))
        return Outcome(
            answer: final.record.text.trimmed, text: final.answer, stages: records,
            reward: RewardSearchRecord(
                candidates: config.candidates, keep: config.keep, maxRetraces: config.method == .swires ? config.retraces : 0,
                thresholds: thresholds, retraces: retraces, winner: chosen[last], winnerScore: final.score))
    }

    /// Generates `config.candidates` new candidates of `stage` continuing `parents` (candidates of
    /// the previous stage, best first; nil: the empty answer), scores them in one call and appends
    /// them to the stage's pool. The candidates are spread evenly over the parents, the better
    /// parents taking any remainder; candidate indices (and so seeds) continue the pool's numbering.
    func extend(_ pools: inout [Pool], stage: Stage, parents: [Int?]) async throws {
        let s = stage.index
        let first = pools[s].members.count
        let m = config.candidates
        let owners = (0..<parents.count).flatMap { p in
            [Int](repeating: p, count: m / parents.count + (p < m % parents.count ? 1 : 0))
        }
        let befores = owners.map { owner in
            textBefore(stage, answerSoFar: parents[owner].map { pools[s - 1].members[$0].answer } ?? "")
        }
        let start = ContinuousClock.now
        let generated = try await generateGrouped(
            prefixes: befores.map { $0 + (config.forceTags ? stage.openingTag : "") }, unit: s, stop: [stage.closingTag],
            firstCandidate: first)
        pools[s].generateCosts += generated.costs
        var fresh = generated.candidates.enumerated().map { j, g in
            let record = record(
                g.candidate, index: first + j, seed: g.seed,
                cut: UnitCutter.cut(g.candidate.text, stage: stage, atStageStart: true, forceTags: config.forceTags, sentenceEnds: []))
            let stageText = stage.openingTag + record.text + stage.closingTag
            return Scored(record: record, parent: parents[owners[j]], stageText: stageText, answer: befores[j] + stageText, score: 0)
        }
        pools[s].generateSeconds += seconds(since: start)
        await events?(.candidatesReady(stage: stage, unit: s, candidates: fresh.map(\.record)))

        let scoreStart = ContinuousClock.now
        let scores = try await score(fresh.map(\.answer), topic: JudgeTopic(stage))
        for j in fresh.indices { fresh[j].score = scores[j] }
        pools[s].scoreSeconds += seconds(since: scoreStart)
        pools[s].members += fresh
        await events?(.scored(stage: stage, unit: s, candidates: fresh.map(\.record.index), scores: scores))
    }

    func score(_ answers: [String], topic: JudgeTopic) async throws -> [Double] {
        guard let scorer = search.scorer else {
            throw SearchError(.scorerMissing, "method \(config.method.rawValue) needs a scorer")
        }
        let request = ScoreRequest(
            scoring: answers, topic: topic, question: question, imageRef: imageRef, templates: search.rewardTemplates)
        let scores = try await scorer.score(request)
        guard scores.count == answers.count else {
            throw SearchError(.scorerContract, "scorer returned \(scores.count) scores for \(answers.count) candidates")
        }
        // NaN has no order: it ranks with −∞, below every real score.
        return scores.map { $0.isNaN ? -.infinity : $0 }
    }

    /// The best score of a pool (−∞ when empty).
    func best(_ members: [Scored]) -> Double {
        members.map(\.score).max() ?? -.infinity
    }

    /// Up to `keep` of `among`, best score first, ties to the lower candidate index; a candidate
    /// whose answer equals a better one's is passed over, so survivors are distinct lines of text.
    func ranked(_ members: [Scored], among: [Int], keep: Int) -> [Int] {
        let order = among.sorted { a, b in
            members[a].score != members[b].score ? members[a].score > members[b].score : a < b
        }
        var kept: [Int] = []
        var answers: Set<String> = []
        for i in order where kept.count < keep && answers.insert(members[i].answer).inserted { kept.append(i) }
        return kept
    }
}
