import Foundation
import Logging
import Search
import Synchronization
import Testing
import Transport
import Wire

@testable import Cluster

/// Judge requests the dispatcher sent, decoded; filled from the dispatcher's lock, read by the test.
private final class JudgeOutbox: Sendable {
    private let requests = Mutex<[(worker: String, request: Stagebeam_V1_JudgeRequest)]>([])

    func append(_ frames: [[UInt8]]) {
        guard case .judgeRequest(let request) = try! EnvelopeCodec().decode(frames[1]) else { return }
        requests.withLock { $0.append((String(decoding: frames[0], as: UTF8.self), request)) }
    }

    var sent: [(worker: String, request: Stagebeam_V1_JudgeRequest)] { requests.withLock { $0 } }

    /// Waits (up to 2 s) until `count` judge requests were sent.
    func wait(for count: Int) async throws {
        for _ in 0..<2000 {
            if sent.count >= count { return }
            try await Task.sleep(for: .milliseconds(1))
        }
        Issue.record("timed out waiting for \(count) judge requests, \(sent.count) sent")
    }
}

/// A bracket round's judge calls on the coordinator: how they are grouped into requests, spread over
/// judge workers and routed, and what happens when a worker answers only the first match (built
/// before `JudgeRequest.more_matches`), loses them, or finds a prompt too long.
@Suite struct JudgeRoundDispatchTests {
    private let start = ContinuousClock.now
    private let outbox = JudgeOutbox()
    private let dispatcher: Dispatcher

    init() {
        let outbox = self.outbox
        dispatcher = Dispatcher(
            settings: .init(
                heartbeat: HeartbeatPolicy(interval: .milliseconds(100), missedLimit: 3),
                requestTimeout: .seconds(30), noWorkerWait: .seconds(30)),
            codec: EnvelopeCodec(), send: { outbox.append($0) }, logger: Logger(label: "coordinator", factory: SwiftLogNoOpLogHandler.init))
    }

    private func register(_ id: String, credits: Int, roles: [Stagebeam_V1_Role] = [.judge]) {
        var ready = Stagebeam_V1_Ready()
        ready.workerID = id
        ready.modelName = "m"
        ready.modelHash = "model-1"
        ready.roles = roles
        ready.maxBatchSequences = UInt32(credits)
        #expect(dispatcher.ready(from: Array(id.utf8), ready, now: start) == nil)
    }

    /// Match k of a round: its own prompt and seed.
    private func match(_ k: Int) -> JudgeRequest {
        JudgeRequest(
            topic: .caption, imageRef: nil, prompt: "compare pair \(k)", mode: .logprob, verdictPrefix: "Response",
            choices: [" 1", " 2"], maxNewTokens: 8, sampling: .reference, seed: UInt64(100 + k))
    }

    /// The reply a worker gives to the match with `seed` (any function of it).
    private static func logprobs(_ seed: UInt64) -> (Double, Double) { (-Double(seed) / 100, -1) }

    private static func matchResult(_ seed: UInt64) -> Stagebeam_V1_JudgeMatchResult {
        var answer = Stagebeam_V1_JudgeMatchResult()
        (answer.logprobFirst, answer.logprobSecond) = logprobs(seed)
        answer.promptTokens = 40
        answer.reusedPrefixTokens = 12
        return answer
    }

    /// The seeds of a request's matches, in order.
    private static func seeds(_ request: Stagebeam_V1_JudgeRequest) -> [UInt64] {
        [request.seed] + request.moreMatches.map(\.seed)
    }

    /// Answers every match of `request` as a worker that knows `more_matches` does.
    private func answer(_ worker: String, _ request: Stagebeam_V1_JudgeRequest) {
        var result = Stagebeam_V1_JudgeResult()
        result.requestID = request.requestID
        if request.moreMatches.isEmpty {
            (result.logprobFirst, result.logprobSecond) = Self.logprobs(request.seed)
        } else {
            result.matchResults = Self.seeds(request).map(Self.matchResult)
        }
        dispatcher.judgeResult(from: Array(worker.utf8), result, now: start)
    }

    private func expectReplies(_ replies: [MeasuredReply], _ matches: Range<Int>) {
        #expect(
            replies.map(\.reply)
                == matches.map { k in
                    let (first, second) = Self.logprobs(UInt64(100 + k))
                    return .choiceLogprobs(first: first, second: second)
                })
    }

    @Test func oneJudgeWorkerGetsTheRoundAsOneRequest() async throws {
        register("j1", credits: 8)
        let job = JobContext(id: "job", image: nil, beam: 8)
        async let replies = dispatcher.judgeBatch((0..<4).map(match), job: job)
        try await outbox.wait(for: 1)
        let (worker, request) = outbox.sent[0]
        #expect(worker == "j1" && Self.seeds(request) == [100, 101, 102, 103])
        #expect([request.prompt] + request.moreMatches.map(\.prompt) == (0..<4).map { "compare pair \($0)" })
        #expect(request.choices == [" 1", " 2"] && request.verdictPrefix == "Response" && request.stage == .caption)
        answer(worker, request)
        let answered = try await replies
        expectReplies(answered, 0..<4)
        #expect(answered.allSatisfy { $0.cost?.promptTokens == 40 && $0.cost?.reusedPromptTokens == 12 })
        #expect(outbox.sent.count == 1)
    }

    @Test func roundSpreadsEvenlyOverJudgeWorkers() async throws {
        for id in ["j1", "j2", "j3"] { register(id, credits: 8) }
        async let replies = dispatcher.judgeBatch((0..<4).map(match), job: JobContext(id: "job", image: nil, beam: 8))
        try await outbox.wait(for: 3)
        let sent = outbox.sent
        #expect(sent.map(\.worker) == ["j1", "j2", "j3"])
        #expect(sent.map { Self.seeds($0.request) } == [[100, 101], [102], [103]])
        for (worker, request) in sent.reversed() { answer(worker, request) }
        expectReplies(try await replies, 0..<4)
    }

    /// The next judge call of a job goes to a judge worker that judged the job before (it holds the
    /// judge prompt's opening), though another sorts first and has as many credits.
    @Test func judgeCallsGoToTheWorkersThatJudgedTheJob() async throws {
        register("j1", credits: 4)
        register("j2", credits: 4)
        let job = JobContext(id: "job", image: nil, beam: 4)
        async let round = dispatcher.judgeBatch([match(0), match(1)], job: job)
        try await outbox.wait(for: 2)
        for (worker, request) in outbox.sent { answer(worker, request) }
        _ = try await round
        #expect(job.judgePrefixHolders.workers == [Array("j1".utf8), Array("j2".utf8)])

        let other = JobContext(id: "other", image: nil, beam: 4)
        other.judgePrefixHolders.add([Array("j2".utf8)])
        async let single = dispatcher.judge(match(2), job: other)
        try await outbox.wait(for: 3)
        #expect(outbox.sent[2].worker == "j2")
        answer("j2", outbox.sent[2].request)
        _ = try await single

        // Without judge holders, a worker holding the job's generation prompt comes first.
        register("both", credits: 4, roles: [.generate, .judge])
        let generated = JobContext(id: "generated", image: nil, beam: 4)
        generated.prefixHolders.workers = [Array("both".utf8)]
        async let third = dispatcher.judge(match(3), job: generated)
        try await outbox.wait(for: 4)
        #expect(outbox.sent[3].worker == "both")
        answer("both", outbox.sent[3].request)
        _ = try await third
    }

    /// A worker built before `more_matches` answers the first match alone: the others are sent again,
    /// one per request, and that worker gets one match per request from then on.
    @Test func workerThatJudgesTheFirstMatchAloneGetsTheOthersOneByOne() async throws {
        register("old", credits: 8)
        let job = JobContext(id: "job", image: nil, beam: 8)
        async let replies = dispatcher.judgeBatch((0..<3).map(match), job: job)
        try await outbox.wait(for: 1)
        var result = Stagebeam_V1_JudgeResult()
        result.requestID = outbox.sent[0].request.requestID
        (result.logprobFirst, result.logprobSecond) = Self.logprobs(100)
        dispatcher.judgeResult(from: Array("old".utf8), result, now: start)
        try await outbox.wait(for: 3)
        let resent = outbox.sent.dropFirst()
        #expect(resent.allSatisfy { $0.worker == "old" && $0.request.moreMatches.isEmpty })
        #expect(resent.map(\.request.seed) == [101, 102])
        for (worker, request) in resent { answer(worker, request) }
        expectReplies(try await replies, 0..<3)

        async let next = dispatcher.judgeBatch([match(0), match(1)], job: job)
        try await outbox.wait(for: 5)
        #expect(outbox.sent.dropFirst(3).allSatisfy { $0.request.moreMatches.isEmpty })
        for (worker, request) in outbox.sent.dropFirst(3) { answer(worker, request) }
        expectReplies(try await next, 0..<2)
    }

    /// A match whose prompt does not fit the context is answered so (undecided), not sent again;
    /// the request's other matches get their verdicts.
    @Test func matchTooLongIsAnsweredAndTheOthersAreJudged() async throws {
        register("j1", credits: 8)
        async let replies = dispatcher.judgeBatch((0..<3).map(match), job: JobContext(id: "job", image: nil, beam: 4))
        try await outbox.wait(for: 1)
        let request = outbox.sent[0].request
        var result = Stagebeam_V1_JudgeResult()
        result.requestID = request.requestID
        result.matchResults = Self.seeds(request).map(Self.matchResult)
        result.matchResults[1] = Stagebeam_V1_JudgeMatchResult()
        result.matchResults[1].error = ClusterError(.promptTooLong, "judge prompt of 1400 tokens exceeds the context of 1280").wire
        dispatcher.judgeResult(from: Array("j1".utf8), result, now: start)
        let answered = try await replies
        #expect(answered[1].reply == .promptTooLong(message: "judge prompt of 1400 tokens exceeds the context of 1280"))
        #expect([answered[0], answered[2]].map(\.reply) == [0, 2].map { .choiceLogprobs(first: -Double(100 + $0) / 100, second: -1) })
        #expect(outbox.sent.count == 1)
    }

    /// A judge worker dies holding part of a round: its matches go to the live worker with the same
    /// prompts and seeds, and the round's replies are those of an undisturbed run.
    @Test func deadWorkersMatchesGoToTheLiveOneWithTheirSeeds() async throws {
        register("j1", credits: 8)
        register("j2", credits: 8)
        let job = JobContext(id: "job", image: nil, beam: 8)
        async let replies = dispatcher.judgeBatch((0..<4).map(match), job: job)
        try await outbox.wait(for: 2)
        let lost = try #require(outbox.sent.first { $0.worker == "j2" }).request
        let kept = try #require(outbox.sent.first { $0.worker == "j1" }).request
        answer("j1", kept)
        // j1 keeps beating, j2 falls silent past 3 intervals.
        #expect(dispatcher.heard(from: Array("j1".utf8), now: start + .milliseconds(250)))
        dispatcher.tick(now: start + .milliseconds(350))
        try await outbox.wait(for: 3)
        let (worker, resent) = outbox.sent[2]
        #expect(worker == "j1" && Self.seeds(resent) == Self.seeds(lost) && resent.requestID != lost.requestID)
        #expect([resent.prompt] + resent.moreMatches.map(\.prompt) == [lost.prompt] + lost.moreMatches.map(\.prompt))
        answer("j1", resent)
        expectReplies(try await replies, 0..<4)
        #expect(dispatcher.redispatched(job: "job") == 1)
    }
}
