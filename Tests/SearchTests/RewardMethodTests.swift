import Foundation
import Testing

@testable import Search

/// A scorer whose scores come from a script: (request, answer) → score. Records its requests.
struct ScriptedScorer: Scorer {
    let log = CallLog<ScoreRequest>()
    let script: @Sendable (ScoreRequest, String) -> Double

    func score(_ request: ScoreRequest) async throws -> [Double] {
        await log.begin(request)
        await log.end()
        return request.answers.map { script(request, $0) }
    }
}

@Suite struct RewardMethodTests {
    static let job: UInt64 = 7

    /// Candidate i of each stage writes " <stage> c<i> " and closes its tag.
    static func indexedGenerator() -> ScriptedGenerator {
        ScriptedGenerator { request, position in
            let stage = currentStage(request)!
            let i = seedCoordinates(request.seeds[position], job: job).candidate
            return candidate(" \(stage.rawValue) c\(i) \(stage.closingTag)")
        }
    }

    /// The candidate index of `stage` on the line of text `answer`.
    static func index(of stage: Stage, in answer: String) -> Int? {
        guard let open = answer.range(of: "\(stage.openingTag) \(stage.rawValue) c") else { return nil }
        return Int(answer[open.upperBound...].prefix { $0.isNumber })
    }

    func rewardConfig(_ method: SearchMethod, candidates: Int, keep: Int, retraces: Int = 3) -> SearchConfig {
        var c = config(method, seed: Self.job)
        c.candidates = candidates
        c.keep = keep
        c.retraces = retraces
        return c
    }

    @Test func stageBeamKeepsTheTopSurvivorsAndContinuesEach() async throws {
        // Scores by stage and candidate index; the scored stage is the topic's.
        let table: [JudgeTopic: [Double]] = [
            .summary: [1, 3, 2, 0], .caption: [0, 5, 5, 1], .reasoning: [2, 0, 0, 4], .conclusion: [1, 1, 9, 3]
        ]
        let scorer = ScriptedScorer { request, answer in
            table[request.topic]![Self.index(of: Stage(rawValue: request.topic.rawValue)!, in: answer)!]
        }
        let generator = Self.indexedGenerator()
        let search = try StageBeamSearch(
            generator: generator, judge: nil, scorer: scorer, config: rewardConfig(.stageBeam, candidates: 4, keep: 2))
        let events = EventLog()
        let result = try await search.run(question: "Q", imageRef: "img", events: events.sink)

        // Summary: 1 and 2 survive. Caption 0,1 continue summary 1; 2,3 continue summary 2; the tie
        // between 1 and 2 goes to the lower index. Reasoning 0,1 continue caption 1; 2,3 caption 2.
        #expect(result.stages.map { $0.units[0].survivors! } == [[1, 2], [1, 2], [3, 0], [2, 3]])
        #expect(result.stages[1].units[0].parents == [1, 1, 2, 2])
        #expect(result.stages[2].units[0].parents == [1, 1, 2, 2])
        #expect(result.stages[3].units[0].parents == [3, 3, 0, 0])
        #expect(result.stages[3].units[0].scores == [1, 1, 9, 3])
        // The winner is conclusion 2, which continues reasoning 0 ← caption 1 ← summary 1.
        #expect(result.stages.map { $0.units[0].winner } == [1, 1, 0, 2])
        #expect(
            result.text == "<SUMMARY> summary c1 </SUMMARY>\n\n<CAPTION> caption c1 </CAPTION>\n\n"
                + "<REASONING> reasoning c0 </REASONING>\n\n<CONCLUSION> conclusion c2 </CONCLUSION>")
        #expect(result.answer == "conclusion c2")
        #expect(result.beam == 4 && result.reward?.winner == 2 && result.reward?.winnerScore == 9)
        let counts = result.counts
        #expect(counts.candidates == 16 && counts.scoreCalls == 4 && counts.scoredCandidates == 16)
        #expect(counts.judgeCalls == 0 && counts.retraces == 0)

        // Each stage is one score call over its 4 candidates; each survivor is one generate request
        // for 2 candidates with the stage method's seeds.
        #expect(await scorer.log.requests.map(\.count) == [4, 4, 4, 4])
        let requests = await generator.log.requests
        #expect(requests.count == 7)
        let caption = requests.filter { currentStage($0) == .caption }.sorted { $0.assistantPrefix < $1.assistantPrefix }
        #expect(
            caption.map(\.assistantPrefix) == [
                "<SUMMARY> summary c1 </SUMMARY>\n\n<CAPTION>", "<SUMMARY> summary c2 </SUMMARY>\n\n<CAPTION>"
            ])
        #expect(caption[0].seeds == [0, 1].map { SeedDerivation.candidateSeed(job: Self.job, unit: 1, candidate: $0) })
        #expect(caption[1].seeds == [2, 3].map { SeedDerivation.candidateSeed(job: Self.job, unit: 1, candidate: $0) })

        let logged = await events.events
        #expect(logged.filter { if case .scored = $0 { true } else { false } }.count == 4)
        #expect(logged.contains(.survivors(stage: .reasoning, unit: 2, candidates: [3, 0])))

        // The record survives its JSON form.
        #expect(try SearchResult(jsonData: try result.jsonData()) == result)
    }

    @Test func survivorsAreDistinctLines() async throws {
        // Every summary candidate writes the same text: one survivor, which takes all 4 captions.
        let generator = ScriptedGenerator { request, position in
            let stage = currentStage(request)!
            let i = seedCoordinates(request.seeds[position], job: Self.job).candidate
            return candidate(stage == .summary ? " same \(stage.closingTag)" : " \(stage.rawValue) c\(i) \(stage.closingTag)")
        }
        let scorer = ScriptedScorer { _, answer in Double(answer.count) }
        let search = try StageBeamSearch(
            generator: generator, judge: nil, scorer: scorer, config: rewardConfig(.stageBeam, candidates: 4, keep: 2))
        let result = try await search.run(question: "Q")
        #expect(result.stages[0].units[0].survivors == [0])
        #expect(result.stages[1].units[0].parents == [0, 0, 0, 0])
        #expect(result.stages[1].units[0].survivors?.count == 2)
    }

    @Test func swiresRetracesWhenAStageFallsShort() async throws {
        // Reasoning clears the threshold (0) only after a regenerated caption (index ≥ 2); no
        // conclusion ever does. M = 2, N = 1, C = 2 per question.
        let scorer = ScriptedScorer { request, answer in
            switch request.topic {
            case .reasoning: (Self.index(of: .caption, in: answer)! >= 2 ? 1 : -1) + Double(Self.index(of: .reasoning, in: answer)!) / 4
            case .conclusion: -5
            default: Double(Self.index(of: Stage(rawValue: request.topic.rawValue)!, in: answer)!)
            }
        }
        var c = rewardConfig(.swires, candidates: 2, keep: 1, retraces: 2)
        c.rewardMean = 0.5
        c.rewardStd = 2
        c.rewardZ = -0.25
        let generator = Self.indexedGenerator()
        let search = try StageBeamSearch(generator: generator, judge: nil, scorer: scorer, config: c)
        let result = try await search.run(question: "Q")

        let retraces = result.reward!.retraces
        #expect(retraces.count == 2 && result.counts.retraces == 2)
        #expect(result.reward?.thresholds == ["reasoning": 0, "conclusion": 0])
        // 1st: reasoning fell short (best −0.75); caption regenerated as 2, 3 from summary 1; caption 3
        // (scored 3) leads the new reasoning 2, 3, which pass.
        #expect(
            retraces[0]
                == RetraceRecord(
                    stage: .reasoning, attempt: 1, threshold: 0, bestBefore: -0.75, regenerated: [2, 3], regeneratedSurvivors: [3],
                    candidates: [2, 3], bestAfter: 1.75))
        // 2nd: the conclusion fell short; reasoning regenerated from caption 3 (its survivor's parent).
        #expect(retraces[1].stage == .conclusion && retraces[1].regenerated == [4, 5] && retraces[1].candidates == [2, 3])
        #expect(result.stages[2].units[0].parents == [1, 1, 3, 3, 3, 3])
        #expect(result.stages[1].units[0].parents == [1, 1, 1, 1])
        // Regenerated candidates take the next indices of their stage, so seeds never repeat.
        let seeds = result.stages[1].units[0].candidates.map(\.seed)
        #expect(seeds == (0..<4).map { SeedDerivation.candidateSeed(job: Self.job, unit: 1, candidate: $0) })
        // No retrace left: the conclusion's survivors are the best of all four (tied: lowest index).
        #expect(result.stages[3].units[0].survivors == [0])
        #expect(result.reward?.winner == 0)
        #expect(result.stages.map { $0.units[0].winner } == [1, 3, 3, 0])
        #expect(result.answer == "conclusion c0")
        #expect(result.counts.scoreCalls == 4 + 4)
    }

    @Test func swiresWithoutRetracesIsStageBeam() async throws {
        let scorer = ScriptedScorer { _, answer in Double(answer.count % 7) }
        var swires = rewardConfig(.swires, candidates: 4, keep: 2)
        swires.rewardMean = -100
        swires.rewardStd = 1
        let a = try await StageBeamSearch(generator: Self.indexedGenerator(), judge: nil, scorer: scorer, config: swires)
            .run(question: "Q")
        let b = try await StageBeamSearch(
            generator: Self.indexedGenerator(), judge: nil, scorer: scorer, config: rewardConfig(.stageBeam, candidates: 4, keep: 2)
        ).run(question: "Q")
        #expect(a.text == b.text && a.reward?.retraces == [])
        #expect(a.stages.map { $0.units[0].survivors! } == b.stages.map { $0.units[0].survivors! })
    }

    @Test func invalidSettingsAreRefused() throws {
        let scorer = ScriptedScorer { _, _ in 0 }
        #expect(throws: SearchError.self) {
            try StageBeamSearch(generator: Self.indexedGenerator(), judge: nil, config: rewardConfig(.stageBeam, candidates: 4, keep: 2))
        }
        #expect(throws: SearchError.self) {
            try StageBeamSearch(
                generator: Self.indexedGenerator(), judge: nil, scorer: scorer, config: rewardConfig(.stageBeam, candidates: 4, keep: 3))
        }
        // swires needs a threshold: from the calibration or given.
        #expect(throws: SearchError.self) {
            try StageBeamSearch(
                generator: Self.indexedGenerator(), judge: nil, scorer: scorer, config: rewardConfig(.swires, candidates: 4, keep: 2))
        }
        var calibrated = rewardConfig(.swires, candidates: 4, keep: 2)
        calibrated.rewardCalibration = RewardCalibration(
            scorer: RewardCalibration.selfReward, dataset: "val.jsonl", questions: 2,
            stages: ["reasoning": .init(mean: 1, std: 2, count: 8), "conclusion": .init(mean: -1, std: 0.5, count: 8)])
        let search = try StageBeamSearch(generator: Self.indexedGenerator(), judge: nil, scorer: scorer, config: calibrated)
        #expect(search.config.rewardThreshold(.reasoning) == 1 + RewardCalibration.defaultZ * 2)
        #expect(search.config.rewardThreshold(.conclusion) == -1 + RewardCalibration.defaultZ * 0.5)
    }

    @Test func calibrationRoundTripsThroughRecommendations() throws {
        let json = #"""
            {"requires_image": true, "search": {"method": "swires", "candidates": 8, "keep": 2, "retraces": 1, "reward_z": 0.5},
             "reward_calibration": {"scorer": "self-reward", "dataset": "val.jsonl", "questions": 3,
               "stages": {"reasoning": {"mean": -1, "std": 2, "count": 12}, "conclusion": {"mean": 0, "std": 1, "count": 12}}}}
            """#
        let recommendations = try ModelRecommendations(json: Data(json.utf8))
        let config = recommendations.config(choices: SearchSettings())
        #expect(config.method == .swires && config.candidates == 8 && config.keep == 2 && config.retraces == 1)
        #expect(config.rewardThreshold(.reasoning) == -1 + 0.5 * 2)
        // A calibration of another scorer does not apply.
        #expect(recommendations.config(choices: SearchSettings(), scorer: "reward-model:rm").rewardCalibration == nil)
    }

    @Test func rewardTemplatesRenderAndValidate() throws {
        let request = ScoreRequest(scoring: ["a"], topic: .reasoning, question: "How many?", imageRef: nil, templates: .builtIn)
        #expect(request.verification.contains("REASONING") && request.verification.contains("How many?"))
        #expect(request.choices == [" yes", " no"])
        #expect(throws: SearchError.self) {
            try RewardTemplates(
                json: Data(
                    #"{"version": 1, "verification": "no criterion", "verdictPrefix": "", "choices": ["y", "n"], "criteria": {}}"#.utf8),
                source: "t")
        }
    }
}
