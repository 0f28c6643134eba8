/// A candidate entering a tournament: its index in the unit and the text the judge is shown.
struct Entrant: Sendable, Hashable {
    var index: Int
    var text: String
}

/// Plays matches: renders the judge prompts, calls the judge once per match (or twice, both orders),
/// a bracket round's calls as one batch, reads the verdicts and decides.
struct Referee: Sendable {
    let judge: any Judge
    let templates: JudgeTemplates
    let parser: VerdictParser
    let config: SearchConfig
    let question: String
    let imageRef: String?
    let events: SearchEventSink?

    init(
        judge: any Judge, templates: JudgeTemplates, config: SearchConfig, question: String, imageRef: String?,
        events: SearchEventSink?
    ) {
        self.judge = judge
        self.templates = templates
        self.parser = VerdictParser(templates: templates)
        self.config = config
        self.question = question
        self.imageRef = imageRef
        self.events = events
    }

    /// One match alone: a round of one.
    func play(
        unit: Int, topic: JudgeTopic, hints: [Stage: String], match: Int, round: Int,
        a: Entrant, b: Entrant
    ) async throws -> MatchRecord {
        try await playRound(unit: unit, topic: topic, hints: hints, firstMatch: match, round: round, pairs: [(a, b)])[0]
    }

    /// A bracket round's matches: every judge call of every match goes to the judge as one batch
    /// (`Judge.judgeBatch`), then each match is decided as `play` decides it alone; the same seeds
    /// and prompts, so the same records whatever the batch. Verdict events follow in match order.
    func playRound(
        unit: Int, topic: JudgeTopic, hints: [Stage: String], firstMatch: Int, round: Int,
        pairs: [(Entrant, Entrant)]
    ) async throws -> [MatchRecord] {
        var records = pairs.enumerated().map { k, pair in
            MatchRecord(
                match: firstMatch + k, round: round, a: pair.0.index, b: pair.1.index, calls: [],
                outcome: .identical, winner: min(pair.0.index, pair.1.index))
        }
        var requests: [(match: Int, order: JudgeOrder, request: JudgeRequest)] = []
        for (k, (a, b)) in pairs.enumerated() where a.text != b.text {
            let orders: [JudgeOrder] = config.judgeBothOrders ? [.forward, .reversed] : [.forward]
            for order in orders {
                let shown = order == .forward ? (a, b) : (b, a)
                requests.append((k, order, request(order, unit: unit, topic: topic, hints: hints, match: firstMatch + k, shown: shown)))
            }
        }
        if !requests.isEmpty {
            let start = ContinuousClock.now
            let replies = try await judge.judgeBatch(requests.map(\.request))
            guard replies.count == requests.count else {
                throw SearchError(.judgeContract, "judge answered \(replies.count) of a batch of \(requests.count) comparisons")
            }
            let wall = seconds(since: start)
            for (sent, measured) in zip(requests, replies) {
                let verdict = try CallVerdict(reply: measured.reply, mode: config.judgeMode, parser: parser)
                records[sent.match].calls.append(
                    JudgeCallRecord(
                        order: sent.order, seed: sent.request.seed, reply: measured.reply, verdict: verdict,
                        cost: CallCost(wallSeconds: wall, compute: measured.cost)))
            }
        }
        for k in records.indices where !records[k].calls.isEmpty {
            switch MatchDecision.decide(records[k].calls, mode: config.judgeMode) {
            case .some(true): records[k].outcome = .judged; records[k].winner = records[k].a
            case .some(false): records[k].outcome = .judged; records[k].winner = records[k].b
            case nil: records[k].outcome = .undecided
            }
        }
        for record in records { await events?(.verdict(topic: topic, unit: unit, match: record)) }
        return records
    }

    /// The judge request of one call: the prompt showing `shown` in that order, and the call's seed.
    func request(
        _ order: JudgeOrder, unit: Int, topic: JudgeTopic, hints: [Stage: String], match: Int, shown: (Entrant, Entrant)
    ) -> JudgeRequest {
        JudgeRequest(
            comparing: shown.0.text, shown.1.text, topic: topic, question: question, imageRef: imageRef, hints: hints,
            templates: templates, config: config,
            seed: SeedDerivation.judgeSeed(job: config.seed, unit: unit, match: match, order: order))
    }
}

/// How a match's judge calls decide it; `stagebeam eval`'s judge accuracy reads pairs with it too, so that
/// its both-orders figure is the verdict the search would reach with `--judge-both-orders`.
public enum MatchDecision {
    /// true: the match's first entrant (a) wins; false: b wins; nil: undecided.
    /// logprob: the margins log p(a) − log p(b) of the usable calls are summed (one order's bias cancels
    /// the other's); a zero sum is undecided. generate: usable verdicts must agree; if the two orders
    /// disagree the judge only followed position, and the match is undecided.
    public static func decide(_ calls: [JudgeCallRecord], mode: VerdictMode) -> Bool? {
        switch mode {
        case .logprob:
            var margin = 0.0
            var usable = false
            for call in calls {
                guard case .choiceLogprobs(let first, let second) = call.reply, first.isFinite, second.isFinite else { continue }
                usable = true
                margin += call.order == .forward ? first - second : second - first
            }
            guard usable, margin != 0 else { return nil }
            return margin > 0
        case .generate:
            let prefersA: [Bool] = calls.compactMap { call in
                switch call.verdict {
                case .first: call.order == .forward
                case .second: call.order == .reversed
                case .tie, .unparsable, .promptTooLong: nil
                }
            }
            guard let firstPreference = prefersA.first, prefersA.allSatisfy({ $0 == firstPreference }) else { return nil }
            return firstPreference
        }
    }
}

extension JudgeRequest {
    /// The request the search sends to compare `first` and `second`, shown in that order, on `topic`:
    /// the user message rendered from `templates`, and in logprob mode the verdict prefix and choices.
    /// Public so that other tools (`stagebeam eval`'s judge accuracy) ask the judge exactly as the search does.
    public init(
        comparing first: String, _ second: String, topic: JudgeTopic, question: String, imageRef: String?,
        hints: [Stage: String], templates: JudgeTemplates, config: SearchConfig, seed: UInt64
    ) {
        let logprob = config.judgeMode == .logprob
        self.init(
            topic: topic, imageRef: imageRef,
            prompt: templates.renderPrompt(topic: topic, question: question, hints: hints, first: first, second: second),
            mode: config.judgeMode,
            verdictPrefix: logprob ? templates.verdictPrefix : "",
            choices: logprob ? templates.choices : [],
            maxNewTokens: config.judgeMaxTokens, sampling: config.judgeSampling, seed: seed)
    }
}

extension CallVerdict {
    /// What a judge's reply to a request of `mode` says, in the positions that request showed.
    /// Non-finite log-probabilities are unparsable; equal ones a tie.
    public init(reply: JudgeReply, mode: VerdictMode, parser: VerdictParser) throws {
        switch (mode, reply) {
        case (_, .promptTooLong):
            self = .promptTooLong
        case (.generate, .verdict(let text)):
            self = parser.parse(text)
        case (.logprob, .choiceLogprobs(let first, let second)):
            self = !first.isFinite || !second.isFinite ? .unparsable : first > second ? .first : first < second ? .second : .tie
        default:
            throw SearchError(.judgeContract, "judge answered \(reply) to a \(mode.rawValue)-mode request")
        }
    }
}
