import Testing

@testable import Search

@Suite struct SentenceMethodTests {
    /// Sentences already written in the current stage of a request's prefix.
    static func sentencesSoFar(_ request: GenerateRequest, _ stage: Stage) -> Int {
        let prefix = request.assistantPrefix
        let body = prefix[prefix.range(of: stage.openingTag, options: .backwards)!.upperBound...]
        return body.filter { $0 == "." }.count
    }

    @Test func unitsAreSentencesWithinEachStage() async throws {
        // Two sentences, then the closing tag. Candidate 1 carries KEY; candidate 2 runs on past its sentence.
        let generator = ScriptedGenerator { request, position in
            let stage = currentStage(request)!
            let k = Self.sentencesSoFar(request, stage)
            let i = seedCoordinates(request.seeds[position], job: 42).candidate
            let key = i == 1 ? "KEY" : ""
            if k < 2 { return candidate(" \(stage.rawValue)\(k)c\(i)\(key). " + (i == 2 ? "Run-on sentence. " : "")) }
            return candidate(" done\(i)\(key) \(stage.closingTag)")
        }
        // The judge sees the stage so far plus the sentence, so it counts KEYs: more is better.
        let judge = FakeJudge { a, b in
            let ka = a.components(separatedBy: "KEY").count, kb = b.components(separatedBy: "KEY").count
            return ka == kb ? nil : ka > kb ? 1 : 2
        }
        let search = try StageBeamSearch(generator: generator, judge: judge, templates: testTemplates, config: config(.sentence, beam: 3))
        let result = try await search.run(question: "q")

        #expect(result.stages[0].text == "<SUMMARY> summary0c1KEY. summary1c1KEY. done1KEY </SUMMARY>")
        #expect(result.answer == "conclusion0c1KEY. conclusion1c1KEY. done1KEY")
        #expect(result.stages.map { $0.units.map(\.unit) } == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]])
        #expect(result.stages.allSatisfy { !$0.forcedClose })
        #expect(result.counts.judgeCalls == 12 * 2)
        let firstUnit = result.stages[0].units[0].candidates
        #expect(firstUnit.map(\.ending) == [.sentence, .sentence, .sentence])
        #expect(firstUnit[2].trimmedTail && firstUnit[2].text == " summary0c2.")

        let requests = await generator.log.requests
        #expect(requests.count == 12)
        // A sentence is kept without the space after it: the next one's first token carries it.
        #expect(requests[1].assistantPrefix == "<SUMMARY> summary0c1KEY.")
        #expect(requests[3].assistantPrefix == "<SUMMARY> summary0c1KEY. summary1c1KEY. done1KEY </SUMMARY>\n\n<CAPTION>")
        #expect(requests.allSatisfy { $0.stop == [currentStage($0)!.closingTag] + SearchConfig().sentenceEnds })
        for (unit, request) in requests.enumerated() {
            #expect(request.seeds == (0..<3).map { SeedDerivation.candidateSeed(job: 42, unit: unit, candidate: $0) })
        }
        // Each stage's budget shrinks by the tokens of the sentences chosen so far.
        let spent = result.stages[0].units[0].candidates[1].tokens
        #expect(requests[0].maxNewTokens == 512 && requests[1].maxNewTokens == 512 - spent)

        // The judge compares the stage text so far with each candidate sentence appended.
        let secondUnitPrompts = await judge.log.requests.map(\.prompt).filter { $0.contains("summary1c") && !$0.contains("done") }
        #expect(secondUnitPrompts.count == 2)
        #expect(secondUnitPrompts.allSatisfy { shownCandidates($0).0.hasPrefix("summary0c1KEY. summary1c") })
    }

    @Test func stageBudgetEndsTheStage() async throws {
        let generator = ScriptedGenerator { _, _ in candidate(" Word word word. ", tokens: 10) }
        var c = config(.sentence, beam: 2)
        c.maxStageTokens = 25
        let result = try await StageBeamSearch(
            generator: generator, judge: FakeJudge(prefer: prefersLonger),
            templates: testTemplates, config: c
        ).run(question: "q")
        #expect(result.stages.allSatisfy { $0.forcedClose && $0.units.count == 3 })
        #expect(result.stages[0].text == "<SUMMARY>" + String(repeating: " Word word word.", count: 3) + "</SUMMARY>")
        #expect(await generator.log.requests.prefix(3).map(\.maxNewTokens) == [25, 15, 5])
        // Identical candidates need no judge.
        #expect(result.counts.judgeCalls == 0)
        #expect(result.stages[0].units.allSatisfy { $0.tournament!.matches.map(\.outcome) == [.identical] })
    }

    @Test func aSentenceThatLeavesItsStageClosesIt() async throws {
        let generator = ScriptedGenerator { request, _ in
            let stage = currentStage(request)!
            return Self.sentencesSoFar(request, stage) == 0 ? candidate(" One. ") : candidate(" two <CAPTION> skipping ahead")
        }
        let result = try await StageBeamSearch(generator: generator, judge: nil, config: config(.sentence, beam: 1)).run(question: "q")
        #expect(result.stages.map(\.text) == Stage.allCases.map { "\($0.openingTag) One. two \($0.closingTag)" })
        #expect(result.stages.allSatisfy { $0.forcedClose && $0.units.count == 2 })
        #expect(result.stages[0].units[1].candidates[0].trimmedTail)
    }

    @Test func aGeneratorThatReportsNoTokensStillTerminates() async throws {
        let generator = ScriptedGenerator { _, _ in candidate("Again. ", tokens: 0) }
        var c = config(.sentence, beam: 1)
        c.maxStageTokens = 4
        let result = try await StageBeamSearch(generator: generator, judge: nil, config: c).run(question: "q")
        #expect(result.stages.allSatisfy { $0.units.count == 4 && $0.forcedClose })
    }
}
