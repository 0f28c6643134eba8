import Testing

@testable import Search

@Suite struct BestOfNTests {
    @Test func nWholeAnswersThenOneTournamentAtTheEnd() async throws {
        // Answer i is " <stage> a<i>" at every stage; only answer 2's conclusion carries KEY.
        let generator = ScriptedGenerator { request, position in
            let stage = currentStage(request)!
            let (unit, i) = seedCoordinates(request.seeds[position], job: 42)
            #expect(unit == stage.index)
            let key = stage == .conclusion && i == 2 ? " KEY" : ""
            return candidate(" \(stage.rawValue) a\(i)\(key) \(stage.closingTag)")
        }
        let judge = FakeJudge(prefer: prefersKeyword)
        let events = EventLog()
        let search = try StageBeamSearch(
            generator: generator, judge: judge, templates: testTemplates,
            config: config(.bestOfN, beam: 4, tournament: .bracket))
        let result = try await search.run(question: "q", events: events.sink)

        #expect(result.answer == "conclusion a2 KEY")
        #expect(
            result.text == "<SUMMARY> summary a2 </SUMMARY>\n\n<CAPTION> caption a2 </CAPTION>\n\n"
                + "<REASONING> reasoning a2 </REASONING>\n\n<CONCLUSION> conclusion a2 KEY </CONCLUSION>")
        #expect(result.stages.allSatisfy { $0.units[0].winner == 2 && $0.units[0].tournament == nil })
        #expect(result.stages[1].text == "<CAPTION> caption a2 </CAPTION>")

        // N−1 judge calls, all on whole answers, all after the last candidates were generated.
        let judged = await judge.log.requests
        #expect(judged.count == 3 && result.counts.judgeCalls == 3)
        #expect(judged.allSatisfy { $0.topic == .answer && $0.prompt.contains("crit-answer") })
        #expect(judged.allSatisfy { shownCandidates($0.prompt).0.hasPrefix("<SUMMARY> summary a") })
        #expect(result.finalTournament?.matches.count == 3 && result.finalTournament?.topic == .answer)
        let log = await events.events
        let lastCandidates = log.lastIndex { if case .candidatesReady = $0 { true } else { false } }!
        let firstVerdict = log.firstIndex { if case .verdict = $0 { true } else { false } }!
        #expect(lastCandidates < firstVerdict)

        // One batched request for the shared summary prefix, then one per answer.
        let requests = await generator.log.requests
        #expect(requests.map(\.seeds.count) == [4] + Array(repeating: 1, count: 12))
        #expect(Set(requests.dropFirst().map(\.assistantPrefix)).count == 12)
        for record in result.stages {
            #expect(
                record.units[0].candidates.map(\.seed)
                    == (0..<4).map { SeedDerivation.candidateSeed(job: 42, unit: record.stage.index, candidate: $0) })
        }
        // The judge seeds of the final tournament belong to unit 4.
        #expect(
            result.finalTournament!.matches.allSatisfy {
                $0.calls[0].seed == SeedDerivation.judgeSeed(job: 42, unit: 4, match: $0.match, order: .forward)
            })
    }

    @Test func wholeAnswersTooLongForTheJudgeLeaveTheMatchUndecided() async throws {
        let generator = ScriptedGenerator { request, position in
            let stage = currentStage(request)!
            return candidate(" \(stage.rawValue) \(request.seeds[position] % 97) \(stage.closingTag)")
        }
        struct OverflowingJudge: Judge {
            func judge(_ request: JudgeRequest) async throws -> JudgeReply {
                .promptTooLong(message: "prompt of 1320 tokens + 320 new tokens exceeds the context of 1024")
            }
        }
        for mode in VerdictMode.allCases {
            var options = config(.bestOfN, beam: 3, mode: mode)
            options.judgeBothOrders = true
            let search = try StageBeamSearch(generator: generator, judge: OverflowingJudge(), templates: testTemplates, config: options)
            let result = try await search.run(question: "q")
            let matches = result.finalTournament!.matches
            #expect(matches.count == 2 && matches.allSatisfy { $0.outcome == .undecided })
            #expect(matches.flatMap(\.calls).allSatisfy { $0.verdict == .promptTooLong })
            #expect(result.counts.judgePromptsTooLong == 4 && result.counts.unparsableVerdicts == 0)
            #expect(result.stages.allSatisfy { $0.units[0].winner == 0 }, "undecided matches go to the lower index")
        }
    }

    @Test func answersThatStillShareAPrefixShareARequestAndOrderDoesNotMatter() async throws {
        // Answers 0 and 1 write the same summary, so their captions continue one prefix together.
        func generator(reverseDelays: Bool) -> ScriptedGenerator {
            var g = ScriptedGenerator { request, position in
                let stage = currentStage(request)!
                let i = seedCoordinates(request.seeds[position], job: 42).candidate
                let text = stage == .summary ? " plan \(i < 2 ? 0 : i)" : " \(stage.rawValue) \(request.seeds[position] % 97)"
                return candidate(text + " \(stage.closingTag)")
            }
            g.delay = { request in
                let i = seedCoordinates(request.seeds[0], job: 42).candidate
                return .milliseconds(reverseDelays ? 3 * (4 - i) : 3 * i)
            }
            return g
        }
        let first = generator(reverseDelays: false)
        let a = try await StageBeamSearch(
            generator: first, judge: FakeJudge(prefer: prefersLonger), templates: testTemplates,
            config: config(.bestOfN, beam: 4)
        ).run(question: "q")
        let b = try await StageBeamSearch(
            generator: generator(reverseDelays: true), judge: FakeJudge(prefer: prefersLonger),
            templates: testTemplates, config: config(.bestOfN, beam: 4)
        ).run(question: "q")
        #expect(withoutTimings(a) == withoutTimings(b))
        let captionRequests = await first.log.requests.filter { currentStage($0) == .caption }
        #expect(captionRequests.map(\.seeds.count).sorted() == [1, 1, 2])
    }
}
