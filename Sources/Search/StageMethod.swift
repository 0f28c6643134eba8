extension SearchRun {
    /// `stage` and `greedy`: per stage, N candidates from the chosen text so far, a tournament on the
    /// stage's criterion, the winner appended; a stage outside `searchStages` is one greedy candidate.
    func stageMethod() async throws -> Outcome {
        var answerSoFar = ""
        var chosen: [Stage: String] = [:]
        var stages: [StageRecord] = []
        for stage in Stage.allCases {
            await events?(.stageStarted(stage: stage))
            let unit = stage.index
            let before = textBefore(stage, answerSoFar: answerSoFar)
            let start = ContinuousClock.now
            let searched = config.searchStages.contains(stage)
            let generated = try await generate(
                prefix: before + (config.forceTags ? stage.openingTag : ""), unit: unit,
                candidates: Array(0..<(searched ? config.beam : 1)), stop: [stage.closingTag], maxNewTokens: config.maxStageTokens,
                sampling: searched ? config.sampling : .greedy)
            let candidates = generated.candidates.enumerated().map { i, g in
                record(
                    g.candidate, index: i, seed: g.seed,
                    cut: UnitCutter.cut(
                        g.candidate.text, stage: stage, atStageStart: true,
                        forceTags: config.forceTags, sentenceEnds: []))
            }
            let generateSeconds = seconds(since: start)
            await events?(.candidatesReady(stage: stage, unit: unit, candidates: candidates))

            let judgeStart = ContinuousClock.now
            let tournament = try await tournament(
                unit: unit, topic: JudgeTopic(stage), hints: chosen,
                entrants: candidates.map { Entrant(index: $0.index, text: $0.text.trimmed) })
            let winner = candidates[tournament?.winner ?? 0]
            await events?(.winner(topic: JudgeTopic(stage), unit: unit, candidate: winner.index))

            let stageText = stage.openingTag + winner.text + stage.closingTag
            answerSoFar = before + stageText
            chosen[stage] = winner.text.trimmed
            stages.append(
                StageRecord(
                    stage: stage, text: stageText, forcedClose: winner.forcedClose,
                    units: [
                        UnitRecord(
                            unit: unit, candidates: candidates, tournament: tournament, winner: winner.index,
                            generateCosts: [generated.cost])
                    ],
                    generateSeconds: generateSeconds, judgeSeconds: seconds(since: judgeStart)))
        }
        return Outcome(answer: chosen[.conclusion] ?? "", text: answerSoFar, stages: stages)
    }
}
