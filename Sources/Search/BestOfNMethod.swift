extension SearchRun {
    /// `best-of-n`: N whole answers, each written stage by stage from its own text (so every stage gets
    /// the same forced tags, budget and cutting as in the stage method), then one tournament judged on
    /// the whole answers (topic `answer`), because the reference compares complete outputs.
    /// Candidate i of stage s has the same seed as in the stage method; answers that still share a
    /// prefix (all of them, at the summary) are generated in one request.
    func bestOfNMethod() async throws -> Outcome {
        let n = config.beam
        var answers = [String](repeating: "", count: n)
        var conclusions = [String](repeating: "", count: n)
        var stageTexts = [[String]](repeating: [], count: n)
        var stages: [StageRecord] = []
        for stage in Stage.allCases {
            await events?(.stageStarted(stage: stage))
            let unit = stage.index
            let befores = answers.map { textBefore(stage, answerSoFar: $0) }
            let start = ContinuousClock.now
            let generated = try await generateGrouped(
                prefixes: befores.map { $0 + (config.forceTags ? stage.openingTag : "") }, unit: unit,
                stop: [stage.closingTag])
            let candidates = generated.candidates.enumerated().map { i, g in
                record(
                    g.candidate, index: i, seed: g.seed,
                    cut: UnitCutter.cut(
                        g.candidate.text, stage: stage, atStageStart: true,
                        forceTags: config.forceTags, sentenceEnds: []))
            }
            let generateSeconds = seconds(since: start)
            await events?(.candidatesReady(stage: stage, unit: unit, candidates: candidates))
            for (i, candidate) in candidates.enumerated() {
                let stageText = stage.openingTag + candidate.text + stage.closingTag
                stageTexts[i].append(stageText)
                answers[i] = befores[i] + stageText
                if stage == .conclusion { conclusions[i] = candidate.text.trimmed }
            }
            // Text and winner are the final winner's, filled in after the tournament.
            stages.append(
                StageRecord(
                    stage: stage, text: "", forcedClose: false,
                    units: [
                        UnitRecord(
                            unit: unit, candidates: candidates, tournament: nil, winner: 0, generateCosts: generated.costs)
                    ],
                    generateSeconds: generateSeconds, judgeSeconds: 0))
        }

        let judgeStart = ContinuousClock.now
        let finalUnit = Stage.allCases.count
        let tournament = try await tournament(
            unit: finalUnit, topic: .answer, hints: [:],
            entrants: answers.enumerated().map { Entrant(index: $0.offset, text: $0.element.trimmed) })
        let winner = tournament?.winner ?? 0
        let finalJudgeSeconds = seconds(since: judgeStart)
        await events?(.winner(topic: .answer, unit: finalUnit, candidate: winner))
        for s in stages.indices {
            stages[s].text = stageTexts[winner][s]
            stages[s].forcedClose = stages[s].units[0].candidates[winner].forcedClose
            stages[s].units[0].winner = winner
        }
        return Outcome(
            answer: conclusions[winner], text: answers[winner], stages: stages,
            finalTournament: tournament, finalJudgeSeconds: finalJudgeSeconds)
    }

    /// One candidate per prefix; candidates with identical prefixes share one request (in order of first
    /// appearance), and the requests run concurrently. Results come back in candidate order.
    func generateGrouped(
        prefixes: [String], unit: Int,
        stop: [String]
    ) async throws -> (candidates: [(seed: UInt64, candidate: GeneratedCandidate)], costs: [CallCost]) {
        var groups: [(prefix: String, members: [Int])] = []
        var groupOf: [String: Int] = [:]
        for (i, prefix) in prefixes.enumerated() {
            if let g = groupOf[prefix] {
                groups[g].members.append(i)
            } else {
                groupOf[prefix] = groups.count
                groups.append((prefix, [i]))
            }
        }
        let requests = groups
        return try await withThrowingTaskGroup(
            of: (Int, (candidates: [(seed: UInt64, candidate: GeneratedCandidate)], cost: CallCost)).self
        ) { group in
            for (g, request) in requests.enumerated() {
                group.addTask {
                    (
                        g,
                        try await generate(
                            prefix: request.prefix, unit: unit, candidates: request.members, stop: stop,
                            maxNewTokens: config.maxStageTokens)
                    )
                }
            }
            var out = [(seed: UInt64, candidate: GeneratedCandidate)?](repeating: nil, count: prefixes.count)
            var costs = [CallCost?](repeating: nil, count: requests.count)
            for try await (g, results) in group {
                for (member, result) in zip(requests[g].members, results.candidates) { out[member] = result }
                costs[g] = results.cost
            }
            return (out.map { $0! }, costs.map { $0! })
        }
    }
}
