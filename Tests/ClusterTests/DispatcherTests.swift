import Foundation
import Logging
import Search
import Synchronization
import Testing
import Transport
import Wire

@testable import Cluster

/// What a dispatcher sent, decoded; filled from the dispatcher's lock, read by the test.
private final class Outbox: Sendable {
    private let messages = Mutex<[(worker: String, body: Stagebeam_V1_Envelope.OneOf_Body)]>([])

    func append(_ frames: [[UInt8]]) {
        let body = try! EnvelopeCodec().decode(frames[1])
        messages.withLock { $0.append((String(decoding: frames[0], as: UTF8.self), body)) }
    }

    var generateRequests: [(worker: String, request: Stagebeam_V1_GenerateRequest)] {
        messages.withLock { $0.compactMap { if case .generateRequest(let r) = $0.body { ($0.worker, r) } else { nil } } }
    }

    var judgeRequests: [(worker: String, request: Stagebeam_V1_JudgeRequest)] {
        messages.withLock { $0.compactMap { if case .judgeRequest(let r) = $0.body { ($0.worker, r) } else { nil } } }
    }

    /// Waits (up to 2 s) until `predicate` holds.
    func wait(_ predicate: (Outbox) -> Bool) async throws {
        for _ in 0..<2000 {
            if predicate(self) { return }
            try await Task.sleep(for: .milliseconds(1))
        }
        Issue.record("timed out waiting for the dispatcher to send")
    }
}

/// The scheduling rules on their own, with the socket replaced by a list of the messages sent
/// (the process tests cover the same rules over real sockets; here the cases a healthy text-only
/// cluster cannot produce: images, precise deaths, judge retries).
@Suite struct DispatcherTests {
    private let start = ContinuousClock.now
    private let outbox = Outbox()
    private let dispatcher: Dispatcher

    init() {
        let outbox = self.outbox
        dispatcher = Dispatcher(
            settings: .init(
                heartbeat: HeartbeatPolicy(interval: .milliseconds(100), missedLimit: 3),
                requestTimeout: .seconds(30), noWorkerWait: .seconds(30)),
            codec: EnvelopeCodec(), send: { outbox.append($0) }, logger: Logger(label: "coordinator", factory: SwiftLogNoOpLogHandler.init))
    }

    private func register(_ id: String, credits: Int, roles: [Stagebeam_V1_Role] = [.generate, .judge], hash: String = "model-1")
        -> ClusterError?
    {
        var ready = Stagebeam_V1_Ready()
        ready.workerID = id
        ready.modelName = "m"
        ready.modelHash = hash
        ready.roles = roles
        ready.maxBatchSequences = UInt32(credits)
        return dispatcher.ready(from: Array(id.utf8), ready, now: start)
    }

    private func answer(_ worker: String, _ request: Stagebeam_V1_GenerateRequest) {
        var result = Stagebeam_V1_GenerateResult()
        result.requestID = request.requestID
        result.candidates = request.seeds.map { seed in
            var candidate = Stagebeam_V1_GeneratedCandidate()
            candidate.text = "text of seed \(seed)"
            candidate.tokenCount = 3
            candidate.finishReason = .stop
            return candidate
        }
        dispatcher.generateResult(from: Array(worker.utf8), result, now: start)
    }

    private func generateRequest(_ seeds: [UInt64]) -> GenerateRequest {
        GenerateRequest(
            question: "q", imageRef: nil, assistantPrefix: "<SUMMARY>", seeds: seeds, stop: ["</SUMMARY>"],
            maxNewTokens: 8, sampling: .reference)
    }

    /// Each role has its own model, decided by its first worker and forgotten when the role's last
    /// worker leaves: a worker is refused only for a role whose workers serve another model.
    @Test func eachRoleKeepsItsOwnModelUntilItsLastWorkerLeaves() throws {
        #expect(register("gen", credits: 2, roles: [.generate], hash: "model-a") == nil)
        #expect(register("judge", credits: 2, roles: [.judge], hash: "model-b") == nil, "another role, another model")
        let refused = register("both", credits: 2, roles: [.generate, .judge], hash: "model-b")
        #expect(refused?.code == .modelMismatch)
        #expect(refused?.message.contains("as generate") == true && refused?.message.contains("registered worker gen") == true)
        #expect(register("gen-2", credits: 2, roles: [.generate], hash: "model-a") == nil)

        dispatcher.disconnect(from: Array("gen".utf8), reason: "leaving", now: start)
        #expect(register("both", credits: 2, roles: [.generate, .judge], hash: "model-b")?.code == .modelMismatch, "gen-2 remains")
        dispatcher.disconnect(from: Array("gen-2".utf8), reason: "leaving", now: start)
        #expect(register("both", credits: 2, roles: [.generate, .judge], hash: "model-b") == nil, "no worker of model-a remains")
    }

    /// A model pinned by the operator holds for every role, whoever registers first.
    @Test func pinnedModelHoldsForEveryRole() {
        let pinned = Dispatcher(
            settings: .init(
                heartbeat: HeartbeatPolicy(interval: .milliseconds(100), missedLimit: 3), requestTimeout: .seconds(30),
                noWorkerWait: .seconds(30), pinnedModel: "model-a"),
            codec: EnvelopeCodec(), send: { _ in }, logger: Logger(label: "coordinator", factory: SwiftLogNoOpLogHandler.init))
        var ready = Stagebeam_V1_Ready()
        ready.workerID = "first"
        ready.modelName = "m"
        ready.modelHash = "model-b"
        ready.roles = [.judge]
        ready.maxBatchSequences = 1
        let refusal = pinned.ready(from: Array("first".utf8), ready, now: start)
        #expect(refusal?.code == .modelMismatch && refusal?.message.contains("pinned") == true)
        ready.modelHash = "model-a"
        #expect(pinned.ready(from: Array("first".utf8), ready, now: start) == nil)
    }

    @Test func imageBytesGoToEachWorkerOnceAndAgainWhenItLostThem() async throws {
        #expect(register("a", credits: 2) == nil)
        #expect(register("b", credits: 2) == nil)
        let job = JobContext(id: "job", image: ImagePayload(data: Array("an image".utf8)), beam: 2)

        async let first = dispatcher.generate(generateRequest([11, 12, 13, 14]), job: job).candidates
        try await outbox.wait { $0.generateRequests.count == 2 }
        for (worker, request) in outbox.generateRequests {
            #expect(request.n == 2 && request.image.sha256 == job.image!.sha256 && request.image.data == Data("an image".utf8))
            answer(worker, request)
        }
        let candidates = try await first
        #expect(candidates.map(\.text) == [11, 12, 13, 14].map { "text of seed \($0)" }, "in seed order")
        #expect(candidates.map(\.worker) == ["a", "a", "b", "b"])

        async let second = dispatcher.generate(generateRequest([21, 22, 23, 24]), job: job).candidates
        try await outbox.wait { $0.generateRequests.count == 4 }
        let later = outbox.generateRequests.suffix(2)
        #expect(later.allSatisfy { $0.request.image.data.isEmpty && $0.request.image.sha256 == job.image!.sha256 })
        // Worker a evicted it: it says so, and gets the bytes with the retry.
        let (aWorker, aRequest) = later.first { $0.worker == "a" }!
        var missing = Stagebeam_V1_Error()
        missing.code = .imageNotCached
        missing.requestID = aRequest.requestID
        dispatcher.workerError(from: Array(aWorker.utf8), missing, now: start)
        answer("b", later.first { $0.worker == "b" }!.request)
        try await outbox.wait { $0.generateRequests.count == 5 }
        let retry = outbox.generateRequests[4]
        #expect(retry.request.seeds == aRequest.seeds)
        #expect(!retry.request.image.data.isEmpty)
        answer(retry.worker, retry.request)
        #expect(try await second.count == 4)
    }

    /// The next stage of a job goes to the worker that holds its prompt prefix, while it has credits.
    @Test func nextStagePrefersTheWorkerHoldingThePrefix() async throws {
        _ = register("b", credits: 2)
        let job = JobContext(id: "job", image: nil, beam: 2)
        async let first = dispatcher.generate(generateRequest([1, 2]), job: job).candidates
        try await outbox.wait { $0.generateRequests.count == 1 }
        answer("b", outbox.generateRequests[0].request)
        _ = try await first
        _ = register("a", credits: 2) // a fresh worker, first in id order, holds nothing of this job

        async let second = dispatcher.generate(generateRequest([3, 4]), job: job).candidates
        try await outbox.wait { $0.generateRequests.count == 2 }
        let (worker, request) = outbox.generateRequests[1]
        #expect(worker == "b" && request.seeds == [3, 4], "both candidates to the warm worker")
        answer(worker, request)
        _ = try await second

        // Another job has no warm worker: its candidates are split by credits as usual.
        async let other = dispatcher.generate(generateRequest([5, 6]), job: JobContext(id: "other", image: nil, beam: 2)).candidates
        try await outbox.wait { $0.generateRequests.count == 4 }
        #expect(Set(outbox.generateRequests.suffix(2).map(\.worker)) == ["a", "b"])
        for (worker, request) in outbox.generateRequests.suffix(2) { answer(worker, request) }
        _ = try await other
    }

    @Test func deadWorkersShareGoesElsewhereWithItsSeeds() async throws {
        _ = register("a", credits: 2)
        _ = register("b", credits: 2)
        async let result = dispatcher.generate(generateRequest([1, 2, 3, 4]), job: JobContext(id: "job", image: nil, beam: 2)).candidates
        try await outbox.wait { $0.generateRequests.count == 2 }
        let (_, lost) = outbox.generateRequests.first { $0.worker == "b" }!
        answer("a", outbox.generateRequests.first { $0.worker == "a" }!.request)
        // a keeps beating, b falls silent past 3 intervals.
        #expect(dispatcher.heard(from: Array("a".utf8), now: start + .milliseconds(250)))
        dispatcher.tick(now: start + .milliseconds(350))
        try await outbox.wait { $0.generateRequests.count == 3 }
        let (worker, resent) = outbox.generateRequests[2]
        #expect(worker == "a" && resent.seeds == lost.seeds && resent.requestID != lost.requestID)
        answer("a", resent)
        #expect(try await result.map(\.text) == [1, 2, 3, 4].map { "text of seed \($0)" })
        #expect(dispatcher.redispatched(job: "job") == 1)
        #expect(dispatcher.snapshot(now: start).workers.map(\.workerID) == ["a"])
    }

    @Test func failedJudgeCallIsRetriedOnAnotherJudge() async throws {
        _ = register("j1", credits: 1, roles: [.judge])
        _ = register("j2", credits: 1, roles: [.judge])
        let request = JudgeRequest(
            topic: .summary, imageRef: nil, prompt: "which?", mode: .logprob, verdictPrefix: "Response ",
            choices: ["1", "2"], maxNewTokens: 8, sampling: .reference, seed: 5)
        async let reply = dispatcher.judge(request, job: JobContext(id: "job", image: nil, beam: 2)).reply
        try await outbox.wait { $0.judgeRequests.count == 1 }
        let (first, sent) = outbox.judgeRequests[0]
        #expect(sent.prompt == "which?" && sent.choices == ["1", "2"] && sent.verdictPrefix == "Response ")
        var failure = Stagebeam_V1_Error()
        failure.code = .internal
        failure.requestID = sent.requestID
        dispatcher.workerError(from: Array(first.utf8), failure, now: start)
        try await outbox.wait { $0.judgeRequests.count == 2 }
        let (second, retried) = outbox.judgeRequests[1]
        #expect(second != first)
        var result = Stagebeam_V1_JudgeResult()
        result.requestID = retried.requestID
        result.logprobFirst = -0.5
        result.logprobSecond = -1.5
        dispatcher.judgeResult(from: Array(second.utf8), result, now: start)
        #expect(try await reply == .choiceLogprobs(first: -0.5, second: -1.5))
    }

    @Test func judgePromptTooLongIsTheJudgesAnswerNotRetried() async throws {
        _ = register("j1", credits: 1, roles: [.judge])
        _ = register("j2", credits: 1, roles: [.judge])
        let request = JudgeRequest(
            topic: .answer, imageRef: nil, prompt: "which?", mode: .generate, verdictPrefix: "",
            choices: [], maxNewTokens: 8, sampling: .reference, seed: 5)
        async let reply = dispatcher.judge(request, job: JobContext(id: "job", image: nil, beam: 2)).reply
        try await outbox.wait { $0.judgeRequests.count == 1 }
        let (worker, sent) = outbox.judgeRequests[0]
        var failure = Stagebeam_V1_Error()
        failure.code = .promptTooLong
        failure.message = "prompt of 1320 tokens + 320 new tokens exceeds the context of 1024"
        failure.requestID = sent.requestID
        dispatcher.workerError(from: Array(worker.utf8), failure, now: start)
        #expect(try await reply == .promptTooLong(message: failure.message))
        #expect(outbox.judgeRequests.count == 1 && dispatcher.redispatched(job: "job") == 0)
    }

    @Test func workersOfAnotherModelOrWithoutRolesAreRefused() {
        #expect(register("a", credits: 2, hash: "model-1") == nil)
        #expect(register("b", credits: 2, hash: "model-2")?.code == .modelMismatch)
        #expect(register("c", credits: 2, roles: [])?.code == .invalidArgument)
        #expect(register("d", credits: 0)?.code == .invalidArgument)
        #expect(dispatcher.snapshot(now: start).workers.map(\.workerID) == ["a"])
    }

    @Test func workWaitsForCreditsThenFailsWhenNoWorkerOfItsRoleComes() async throws {
        _ = register("judge-only", credits: 4, roles: [.judge])
        async let result = dispatcher.generate(generateRequest([1]), job: JobContext(id: "job", image: nil, beam: 2)).candidates
        try await Task.sleep(for: .milliseconds(20))
        #expect(outbox.generateRequests.isEmpty)
        #expect(dispatcher.heard(from: Array("judge-only".utf8), now: start + .seconds(31)))
        dispatcher.tick(now: .now + .seconds(31))
        do {
            _ = try await result
            Issue.record("work without a worker of its role must fail")
        } catch let error as ClusterError {
            #expect(error.code == .noWorker)
        }
    }
}
