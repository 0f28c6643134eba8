import Testing

@testable import Search

@Suite struct RefereeTests {
    func referee(_ judge: FakeJudge, mode: VerdictMode, bothOrders: Bool) -> Referee {
        var c = config(mode: mode)
        c.judgeBothOrders = bothOrders
        return Referee(judge: judge, templates: testTemplates, config: c, question: "q", imageRef: "sha256:abc", events: nil)
    }

    let short = Entrant(index: 0, text: "short")
    let long = Entrant(index: 1, text: "much longer")

    @Test func requestCarriesModeSpecificFields() async throws {
        let judge = FakeJudge(prefer: prefersLonger)
        _ = try await referee(judge, mode: .logprob, bothOrders: false).play(
            unit: 2, topic: .reasoning, hints: [.caption: "cap"],
            match: 3, round: 0, a: short, b: long)
        let request = try #require(await judge.log.requests.first)
        #expect(request.verdictPrefix == "Better: Response" && request.choices == [" 1", " 2"])
        #expect(request.imageRef == "sha256:abc" && request.topic == .reasoning)
        #expect(request.prompt.contains("<hint caption>cap</hint>"))
        #expect(request.seed == SeedDerivation.judgeSeed(job: 42, unit: 2, match: 3, order: .forward))

        let generating = FakeJudge(prefer: prefersLonger)
        _ = try await referee(generating, mode: .generate, bothOrders: false).play(
            unit: 0, topic: .summary, hints: [:],
            match: 0, round: 0, a: short, b: long)
        let g = try #require(await generating.log.requests.first)
        #expect(g.verdictPrefix == "" && g.choices.isEmpty && g.maxNewTokens == SearchConfig().judgeMaxTokens)
    }

    @Test func unparsableVerdictIsCountedAndFallsBackToLowerIndex() async throws {
        let judge = FakeJudge(verdictText: { _ in "Hmm, hard to say." }, prefer: prefersLonger)
        let record = try await referee(judge, mode: .generate, bothOrders: false)
            .play(unit: 0, topic: .summary, hints: [:], match: 0, round: 0, a: long, b: short)
        #expect(record.calls.map(\.verdict) == [.unparsable])
        #expect(record.outcome == .undecided)
        #expect(record.winner == 0) // the lower candidate index, although it was shown second
    }

    @Test func bothOrdersCancelPositionBiasInLogprobMode() async throws {
        // Favours whatever is shown first by 1.5 nats, more than its real preference (1 nat).
        let biased = FakeJudge(positionBias: 1.5, prefer: prefersLonger)
        let once = try await referee(biased, mode: .logprob, bothOrders: false)
            .play(unit: 0, topic: .summary, hints: [:], match: 0, round: 0, a: short, b: long)
        #expect(once.winner == short.index && once.calls.count == 1)

        let twice = try await referee(biased, mode: .logprob, bothOrders: true)
            .play(unit: 0, topic: .summary, hints: [:], match: 0, round: 0, a: short, b: long)
        #expect(twice.winner == long.index && twice.outcome == .judged)
        #expect(twice.calls.map(\.order) == [.forward, .reversed])
        #expect(twice.calls.map(\.verdict) == [.first, .first]) // each call alone followed the position
        #expect(twice.calls[1].seed == SeedDerivation.judgeSeed(job: 42, unit: 0, match: 0, order: .reversed))
        let shownFirst = await biased.log.requests.suffix(2).map { shownCandidates($0.prompt).0 }
        #expect(Set(shownFirst) == ["short", "much longer"])
    }

    @Test func bothOrdersInGenerateMode() async throws {
        // Always answers "1": the orders disagree about the candidates, so the match is undecided.
        let alwaysFirst = FakeJudge(prefer: { _, _ in 1 })
        let biased = try await referee(alwaysFirst, mode: .generate, bothOrders: true)
            .play(unit: 0, topic: .summary, hints: [:], match: 0, round: 0, a: long, b: short)
        #expect(biased.outcome == .undecided && biased.winner == 0)

        // A consistent judge: both orders pick the longer one.
        let fair = try await referee(FakeJudge(prefer: prefersLonger), mode: .generate, bothOrders: true)
            .play(unit: 0, topic: .summary, hints: [:], match: 0, round: 0, a: short, b: long)
        #expect(fair.outcome == .judged && fair.winner == 1)
        #expect(fair.calls.map(\.verdict) == [.second, .first])

        // One order unparsable, the other usable: the usable one decides.
        let flaky = FakeJudge(verdictText: { $0 == 2 ? "Response 2" : "???" }, prefer: prefersLonger)
        let half = try await referee(flaky, mode: .generate, bothOrders: true)
            .play(unit: 0, topic: .summary, hints: [:], match: 0, round: 0, a: short, b: long)
        #expect(half.calls.map(\.verdict) == [.second, .unparsable])
        #expect(half.outcome == .judged && half.winner == 1)
    }

    @Test func decideCombinesLogprobMarginsAndSkipsNonFinite() {
        func call(_ order: JudgeOrder, _ first: Double, _ second: Double) -> JudgeCallRecord {
            JudgeCallRecord(order: order, seed: 0, reply: .choiceLogprobs(first: first, second: second), verdict: .tie)
        }
        #expect(MatchDecision.decide([call(.forward, -1, -3), call(.reversed, -1, -2)], mode: .logprob) == true) // +2 − 1
        #expect(MatchDecision.decide([call(.forward, -1, -2), call(.reversed, -1, -3)], mode: .logprob) == false) // +1 − 2
        #expect(MatchDecision.decide([call(.forward, -1, -2), call(.reversed, -1, -2)], mode: .logprob) == nil) // cancels
        #expect(MatchDecision.decide([call(.forward, .nan, -2), call(.reversed, -5, -1)], mode: .logprob) == true)
        #expect(MatchDecision.decide([call(.forward, -.infinity, -2)], mode: .logprob) == nil)
    }

    @Test func identicalTextsNeedNoJudge() async throws {
        let judge = FakeJudge(prefer: prefersLonger)
        let record = try await referee(judge, mode: .logprob, bothOrders: true)
            .play(
                unit: 0, topic: .summary, hints: [:], match: 0, round: 0,
                a: Entrant(index: 3, text: "same"), b: Entrant(index: 1, text: "same"))
        #expect(record.outcome == .identical && record.winner == 1 && record.calls.isEmpty)
        #expect(await judge.log.requests.isEmpty)
    }

    @Test func replyInTheWrongModeIsAContractError() async throws {
        struct WrongMode: Judge {
            func judge(_ request: JudgeRequest) async throws -> JudgeReply { .verdict(text: "1") }
        }
        let r = Referee(
            judge: WrongMode(), templates: testTemplates, config: config(mode: .logprob), question: "q",
            imageRef: nil, events: nil)
        let error = await #expect(throws: SearchError.self) {
            try await r.play(unit: 0, topic: .summary, hints: [:], match: 0, round: 0, a: self.short, b: self.long)
        }
        #expect(error?.code == .judgeContract)
    }
}
