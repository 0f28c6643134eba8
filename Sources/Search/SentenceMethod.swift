extension SearchRun {
    /// `sentence`: within each stage, the unit is one sentence. N candidates continue the stage text so
    /// far up to a sentence end or the closing tag; the tournament's winner is appended; the stage ends
    /// when the winner closes it (or leaves it), or when its token budget is spent.
    func sentenceMethod() async throws -> Outcome {
        var answerSoFar = ""
        var chosen: [Stage: String] = [:]
        var stages: [StageRecord] = []
        var unit = 0
        for stage in Stage.allCases {
            await events?(.stageStarted(stage: stage))
            let before = textBefore(stage, answerSoFar: answerSoFar)
            var body = ""
            var units: [UnitRecord] = []
            var budget = config.maxStageTokens
            var forcedClose = false
            var generateSeconds = 0.0, judgeSeconds = 0.0
            stageLoop: while true {
                // After the first sentence the opening tag is part of the chosen text, forced or not.
                let opening = config.forceTags || !units.isEmpty ? stage.openingTag : ""
                let start = ContinuousClock.now
                let generated = try await generate(
                    prefix: before + opening + body, unit: unit, candidates: Array(0..<config.beam),
                    stop: [stage.closingTag] + config.sentenceEnds, maxNewTokens: budget)
                let candidates = generated.candidates.enumerated().map { i, g in
                    record(
                        g.candidate, index: i, seed: g.seed,
                        cut: UnitCutter.cut(
                            g.candidate.text, stage: stage, atStageStart: units.isEmpty,
                            forceTags: config.forceTags, sentenceEnds: config.sentenceEnds))
                }
                generateSeconds += seconds(since: start)
                await events?(.candidatesReady(stage: stage, unit: unit, candidates: candidates))

                let judgeStart = ContinuousClock.now
                let tournament = try await tournament(
                    unit: unit, topic: JudgeTopic(stage), hints: chosen,
                    entrants: candidates.map { Entrant(index: $0.index, text: (body + $0.text).trimmed) })
                let winner = candidates[tournament?.winner ?? 0]
                judgeSeconds += seconds(since: judgeStart)
                await events?(.winner(topic: JudgeTopic(stage), unit: unit, candidate: winner.index))

                units.append(
                    UnitRecord(
                        unit: unit, candidates: candidates, tournament: tournament, winner: winner.index,
                        generateCosts: [generated.cost]))
                unit += 1
                body += winner.text
                // Every unit costs at least one token, so the loop ends even if a generator reports 0.
                budget -= max(1, winner.tokens)
                switch winner.ending {
                case .closed: break stageLoop
                case .forcedClose: forcedClose = true; break stageLoop
                case .sentence where budget <= 0: forcedClose = true; break stageLoop
                case .sentence: continue
                }
            }
            let stageText = stage.openingTag + body + stage.closingTag
            answerSoFar = before + stageText
            chosen[stage] = body.trimmed
            stages.append(
                StageRecord(
                    stage: stage, text: stageText, forcedClose: forcedClose, units: units,
                    generateSeconds: generateSeconds, judgeSeconds: judgeSeconds))
        }
        return Outcome(answer: chosen[.conclusion] ?? "", text: answerSoFar, stages: stages)
    }
}
