import Foundation
import Testing

@testable import Search

@Suite struct StageMethodTests {
    /// Candidate i of each stage: " <stage> c<i>" (+ " KEY" for the stage's keyed candidate), closed properly.
    static func keyedGenerator(job: UInt64, keyed: [Stage: Int]) -> ScriptedGenerator {
        ScriptedGenerator { request, position in
            let stage = currentStage(request)!
            let i = seedCoordinates(request.seeds[position], job: job).candidate
            return candidate(" \(stage.rawValue) c\(i)\(keyed[stage] == i ? " KEY" : "") \(stage.closingTag)")
        }
    }

    let keyed: [Stage: Int] = [.summary: 2, .caption: 0, .reasoning: 1, .conclusion: 2]

    @Test func eachStageKeepsTheJudgesFavourite() async throws {
        let generator = Self.keyedGenerator(job: 42, keyed: keyed)
        let judge = FakeJudge(prefer: prefersKeyword)
        let search = try StageBeamSearch(generator: generator, judge: judge, templates: testTemplates, config: config(beam: 3))
        let result = try await search.run(question: "Why?", imageRef: "img")

        #expect(result.answer == "conclusion c2 KEY")
        #expect(
            result.text == "<SUMMARY> summary c2 KEY </SUMMARY>\n\n<CAPTION> caption c0 KEY </CAPTION>\n\n"
                + "<REASONING> reasoning c1 KEY </REASONING>\n\n<CONCLUSION> conclusion c2 KEY </CONCLUSION>")
        #expect(result.stages.map(\.stage) == Stage.allCases)
        #expect(result.stages.map { $0.units[0].winner } == [2, 0, 1, 2])
        #expect(result.counts.judgeCalls == 4 * 2 && result.counts.candidates == 12)
        #expect(result.counts.unparsableVerdicts == 0 && result.counts.forcedCloses == 0)

        // Each stage continues the chosen text, with its opening tag forced and its closing tag as the stop.
        let requests = await generator.log.requests
        #expect(
            requests.map(\.assistantPrefix) == [
                "<SUMMARY>",
                "<SUMMARY> summary c2 KEY </SUMMARY>\n\n<CAPTION>",
                "<SUMMARY> summary c2 KEY </SUMMARY>\n\n<CAPTION> caption c0 KEY </CAPTION>\n\n<REASONING>",
                "<SUMMARY> summary c2 KEY </SUMMARY>\n\n<CAPTION> caption c0 KEY </CAPTION>\n\n<REASONING> reasoning c1 KEY </REASONING>\n\n<CONCLUSION>"
            ])
        #expect(requests.map(\.stop) == Stage.allCases.map { [$0.closingTag] })
        #expect(
            requests.allSatisfy { $0.question == "Why?" && $0.imageRef == "img" && $0.maxNewTokens == 512 && $0.sampling == .reference })
        for (unit, request) in requests.enumerated() {
            #expect(request.seeds == (0..<3).map { SeedDerivation.candidateSeed(job: 42, unit: unit, candidate: $0) })
        }

        // The judge sees the stage's criterion and the chosen earlier stages its criterion names.
        let prompts = await judge.log.requests.map(\.prompt)
        let byTopic = Dictionary(grouping: prompts) { p in JudgeTopic.allCases.first { p.contains("crit-\($0.rawValue)") }! }
        #expect(byTopic.mapValues(\.count) == [.summary: 2, .caption: 2, .reasoning: 2, .conclusion: 2])
        #expect(byTopic[.summary]!.allSatisfy { !$0.contains("<hint") })
        #expect(byTopic[.reasoning]!.allSatisfy { $0.contains("<hint caption>caption c0 KEY</hint>C=") })
        #expect(
            byTopic[.conclusion]!.allSatisfy {
                $0.contains("<hint caption>caption c0 KEY</hint><hint reasoning>reasoning c1 KEY</hint>C=")
            })
    }

    /// Stages outside `searchStages` are one greedy candidate with no judge call; the searched ones
    /// are as before (same seeds, same tournament). The stages are kept in the model's order.
    @Test func unsearchedStagesAreWrittenGreedily() async throws {
        let generator = Self.keyedGenerator(job: 42, keyed: keyed)
        let judge = FakeJudge(prefer: prefersKeyword)
        var settings = config(beam: 3)
        settings.searchStages = [.conclusion, .reasoning]
        let search = try StageBeamSearch(generator: generator, judge: judge, templates: testTemplates, config: settings)
        #expect(search.config.searchStages == [.reasoning, .conclusion])
        let result = try await search.run(question: "Why?", imageRef: "img")

        #expect(result.stages.map { $0.units[0].candidates.count } == [1, 1, 3, 3])
        #expect(result.stages.map { $0.units[0].winner } == [0, 0, 1, 2])
        #expect(result.stages.map { $0.units[0].tournament == nil } == [true, true, false, false])
        #expect(result.counts.judgeCalls == 2 * 2 && result.counts.candidates == 8)
        let requests = await generator.log.requests
        #expect(requests.map(\.sampling) == [.greedy, .greedy, .reference, .reference])
        #expect(requests.map(\.seeds.count) == [1, 1, 3, 3])
        #expect(requests[2].seeds == (0..<3).map { SeedDerivation.candidateSeed(job: 42, unit: 2, candidate: $0) })
        let topics = await judge.log.requests.map(\.prompt).map { p in JudgeTopic.allCases.first { p.contains("crit-\($0.rawValue)") }! }
        #expect(Set(topics) == [.reasoning, .conclusion])

        settings.searchStages = []
        #expect(throws: SearchError.self) { try settings.validated() }
    }

    @Test func messyModelOutputNeverCrashesAndIsFlagged() async throws {
        // Per stage: 0 never closes (budget ran out), 1 runs into later stages, 2 is empty, 3 is unicode garbage.
        let generator = ScriptedGenerator { request, position in
            let stage = currentStage(request)!
            switch position {
            case 0: return candidate(" the longest candidate that just keeps going and going", tokens: 512, .length)
            case 1: return candidate(" short \(stage.closingTag)\n\n<CAPTION> stray </CAPTION><CONCLUSION>x")
            case 2: return candidate("", tokens: 0, .eos)
            default: return candidate("\u{FFFD}\u{0}😀<\(stage.closingTag.dropLast())", .eos)
            }
        }
        let search = try StageBeamSearch(
            generator: generator, judge: FakeJudge(prefer: prefersLonger),
            templates: testTemplates, config: config(beam: 4, tournament: .bracket))
        let result = try await search.run(question: "q")

        for record in result.stages {
            #expect(record.forcedClose)
            #expect(
                record.text == "\(record.stage.openingTag) the longest candidate that just keeps going and going\(record.stage.closingTag)")
            let flags = record.units[0].candidates.map { [$0.forcedClose, $0.trimmedTail] }
            #expect(flags == [[true, false], [false, true], [true, false], [true, false]])
            #expect(record.units[0].candidates[1].text == " short ")
            #expect(record.units[0].candidates[2].text == "")
        }
        #expect(result.answer == "the longest candidate that just keeps going and going")
        #expect(result.counts.forcedCloses == 12)
        #expect(result.counts.judgeCalls == 12)
    }

    @Test func withoutForcedTagsTheModelWritesThemAndPreamblesAreDropped() async throws {
        let generator = ScriptedGenerator { request, _ in
            // The stage is the first one whose closing tag is not yet in the prefix.
            let stage = Stage.allCases.first { !request.assistantPrefix.contains($0.closingTag) }!
            return candidate("Sure! \(stage.openingTag) \(stage.rawValue) text \(stage.closingTag)")
        }
        var c = config(.greedy)
        c.forceTags = false
        let result = try await StageBeamSearch(generator: generator, judge: nil, config: c).run(question: "q")
        #expect(
            result.text == "<SUMMARY> summary text </SUMMARY>\n\n<CAPTION> caption text </CAPTION>\n\n"
                + "<REASONING> reasoning text </REASONING>\n\n<CONCLUSION> conclusion text </CONCLUSION>")
        #expect(
            await generator.log.requests.map(\.assistantPrefix) == [
                "", "<SUMMARY> summary text </SUMMARY>\n\n",
                "<SUMMARY> summary text </SUMMARY>\n\n<CAPTION> caption text </CAPTION>\n\n",
                "<SUMMARY> summary text </SUMMARY>\n\n<CAPTION> caption text </CAPTION>\n\n<REASONING> reasoning text </REASONING>\n\n"
            ])
    }

    @Test func unparsableVerdictsAreCountedAndReported() async throws {
        let judge = FakeJudge(verdictText: { _ in "Both have merit." }, prefer: prefersKeyword)
        let search = try StageBeamSearch(
            generator: Self.keyedGenerator(job: 42, keyed: keyed), judge: judge,
            templates: testTemplates, config: config(beam: 3, mode: .generate))
        let result = try await search.run(question: "q")
        #expect(result.counts.judgeCalls == 8)
        #expect(result.counts.unparsableVerdicts == 8)
        #expect(result.counts.undecidedMatches == 8)
        // Undecided matches go to the lower index, so candidate 0 survives every stage.
        #expect(result.stages.map { $0.units[0].winner } == [0, 0, 0, 0])
        let matches = result.stages.flatMap { $0.units[0].tournament!.matches }
        #expect(matches.allSatisfy { $0.outcome == .undecided && $0.calls.map(\.verdict) == [.unparsable] })
    }

    @Test func greedyUsesOneCandidateAtTemperatureZeroAndNoJudge() async throws {
        let generator = Self.keyedGenerator(job: 7, keyed: [:])
        let judge = FakeJudge(prefer: prefersLonger)
        let search = try StageBeamSearch(
            generator: generator, judge: judge, templates: testTemplates,
            config: config(.greedy, beam: 8, seed: 7))
        let result = try await search.run(question: "q")
        #expect(result.beam == 1)
        #expect(await judge.log.requests.isEmpty)
        #expect(result.counts.judgeCalls == 0 && result.counts.candidates == 4)
        let requests = await generator.log.requests
        #expect(requests.count == 4 && requests.allSatisfy { $0.seeds.count == 1 && $0.sampling.temperature == 0 })
        #expect(result.answer == "conclusion c0")

        // No judge is needed at all.
        let alone = try StageBeamSearch(
            generator: Self.keyedGenerator(job: 7, keyed: [:]), judge: nil,
            config: config(.greedy, seed: 7))
        #expect(try await alone.run(question: "q").answer == "conclusion c0")
    }

    @Test func badSetupsAndBrokenGeneratorsGiveNamedErrors() async throws {
        let generator = Self.keyedGenerator(job: 42, keyed: [:])
        let noJudge = #expect(throws: SearchError.self) { try StageBeamSearch(generator: generator, judge: nil, config: config(beam: 2)) }
        #expect(noJudge?.code == .judgeMissing)
        var bad = config(beam: 0)
        #expect((#expect(throws: SearchError.self) { try bad.validated() })?.code == .invalidConfiguration)
        bad = config()
        bad.sampling.topP = 0
        #expect((#expect(throws: SearchError.self) { try bad.validated() })?.message == "candidate top-p must be in (0, 1], got 0.0")
        bad = config()
        bad.maxStageTokens = 0
        #expect((#expect(throws: SearchError.self) { try bad.validated() })?.code == .invalidConfiguration)

        let short = ScriptedGenerator { _, _ in candidate("x") }
        struct DropsOne: CandidateGenerator {
            let inner: ScriptedGenerator
            func generate(_ request: GenerateRequest) async throws -> [GeneratedCandidate] {
                Array(try await inner.generate(request).dropLast())
            }
        }
        let search = try StageBeamSearch(
            generator: DropsOne(inner: short), judge: FakeJudge(prefer: prefersLonger), config: config(beam: 3))
        let error = await #expect(throws: SearchError.self) { try await search.run(question: "q") }
        #expect(error?.code == .generatorContract)
        #expect(error?.message == "generator returned 2 candidates for 3 seeds")
    }

    @Test func eventsFollowTheSearch() async throws {
        let events = EventLog()
        let search = try StageBeamSearch(
            generator: Self.keyedGenerator(job: 42, keyed: keyed), judge: FakeJudge(prefer: prefersKeyword),
            templates: testTemplates, config: config(beam: 3))
        _ = try await search.run(question: "q", events: events.sink)
        let kinds = await events.events.map { event -> String in
            switch event {
            case .stageStarted(let stage): "start \(stage.rawValue)"
            case .candidatesReady(_, let unit, let candidates): "candidates \(unit) \(candidates.count)"
            case .verdict(let topic, let unit, _): "verdict \(topic.rawValue) \(unit)"
            case .winner(let topic, let unit, let candidate): "winner \(topic.rawValue) \(unit) \(candidate)"
            case .scored, .survivors, .retraced: "scored"
            }
        }
        let expected = Stage.allCases.flatMap { stage in
            [
                "start \(stage.rawValue)", "candidates \(stage.index) 3", "verdict \(stage.rawValue) \(stage.index)",
                "verdict \(stage.rawValue) \(stage.index)", "winner \(stage.rawValue) \(stage.index) \(keyed[stage]!)"
            ]
        }
        #expect(kinds == expected)
    }

    @Test func sameJobSameResultWhateverTheTimingAndDifferentSeedDifferentSeeds() async throws {
        // Texts depend on the seed only; each candidate is as long as its seed's low bits say.
        func generator(delays: Bool) -> ScriptedGenerator {
            var g = ScriptedGenerator { request, position in
                let seed = request.seeds[position]
                let stage = currentStage(request)!
                return candidate(" \(stage.rawValue) " + String(repeating: "w", count: Int(seed % 50)) + " \(stage.closingTag)")
            }
            if delays { g.delay = { request in .milliseconds(Int(request.seeds[0] % 7)) } }
            return g
        }
        func run(seed: UInt64, slowJudge: Bool) async throws -> SearchResult {
            var c = config(beam: 5, tournament: .bracket, seed: seed)
            c.judgeBothOrders = true
            var judge = FakeJudge(prefer: prefersLonger)
            if slowJudge { judge = FakeJudge(delay: .milliseconds(3), prefer: prefersLonger) }
            return try await StageBeamSearch(generator: generator(delays: slowJudge), judge: judge, templates: testTemplates, config: c)
                .run(question: "q")
        }
        let a = try await run(seed: 99, slowJudge: false)
        let b = try await run(seed: 99, slowJudge: true)
        #expect(withoutTimings(a) == withoutTimings(b))
        let matches = a.stages.flatMap { stage in stage.units[0].tournament!.matches.map { (stage.stage.index, $0) } }
        #expect(matches.count == 4 * 4)
        #expect(matches.allSatisfy { $0.1.calls.count == 2 || $0.1.outcome == .identical })
        for (unit, match) in matches {
            #expect(
                match.calls.map(\.seed)
                    == match.calls.map {
                        SeedDerivation.judgeSeed(job: 99, unit: unit, match: match.match, order: $0.order)
                    })
        }

        let c = try await run(seed: 100, slowJudge: false)
        #expect(Set(c.stages[0].units[0].candidates.map(\.seed)).isDisjoint(with: a.stages[0].units[0].candidates.map(\.seed)))
    }

    @Test func resultIsJSONWithSnakeCaseKeys() async throws {
        let generator = ScriptedGenerator { request, _ in
            GeneratedCandidate(
                text: " x \(currentStage(request)!.closingTag)", tokenCount: 3, cumulativeLogprob: -.infinity,
                finishReason: .stop, worker: "w1")
        }
        let result = try await StageBeamSearch(generator: generator, judge: nil, config: config(.greedy)).run(question: "q")
        let data = try result.jsonData()
        let json = String(decoding: data, as: UTF8.self)
        for key in [
            "\"forced_close\"", "\"judge_calls\"", "\"unparsable_verdicts\"", "\"answer\" : \"x\"", "\"method\" : \"greedy\"",
            "\"worker\" : \"w1\"", "\"cumulative_logprob\" : \"-inf\"", "\"seed\" : "
        ] {
            #expect(json.contains(key), "\(key)")
        }
        #expect(try SearchResult(jsonData: data) == result)
    }
}
