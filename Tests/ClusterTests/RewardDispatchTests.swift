import Foundation
import Logging
import Search
import Synchronization
import Testing
import Transport
import Wire

@testable import Cluster

/// The reward role's scheduling rules on their own, with the socket replaced by a list of the
/// requests sent: a scorer call split by credits, each distinct prefix sent once, and a job's
/// reward model kept for all of its calls.
@Suite struct RewardDispatchTests {
    private final class Sent: Sendable {
        private let requests = Mutex<[(worker: String, request: Stagebeam_V1_RewardRequest)]>([])

        func append(_ frames: [[UInt8]]) {
            guard case .rewardRequest(let request) = try! EnvelopeCodec().decode(frames[1]) else { return }
            requests.withLock { $0.append((String(decoding: frames[0], as: UTF8.self), request)) }
        }

        var all: [(worker: String, request: Stagebeam_V1_RewardRequest)] { requests.withLock { $0 } }
    }

    private let sent = Sent()
    private let dispatcher: Dispatcher

    init() {
        let sent = self.sent
        dispatcher = Dispatcher(
            settings: .init(
                // Workers never go silent here, however long a loaded machine takes to run the test.
                heartbeat: HeartbeatPolicy(interval: .seconds(3600), missedLimit: 3), requestTimeout: .seconds(3600),
                noWorkerWait: .milliseconds(50)),
            codec: EnvelopeCodec(), send: { sent.append($0) }, logger: Logger(label: "coordinator", factory: SwiftLogNoOpLogHandler.init))
    }

    private func register(_ id: String, credits: Int, rewardModel: String, scorer: String = "self-reward") -> ClusterError? {
        var ready = Stagebeam_V1_Ready()
        ready.workerID = id
        ready.modelName = "m"
        ready.modelHash = "policy"
        ready.roles = [.reward]
        ready.maxBatchSequences = UInt32(credits)
        ready.rewardModelHash = rewardModel
        ready.rewardScorer = scorer
        return dispatcher.ready(from: Array(id.utf8), ready, now: .now)
    }

    private func answer(_ worker: String, _ request: Stagebeam_V1_RewardRequest, rewardModel: String) {
        var result = Stagebeam_V1_RewardResult()
        result.requestID = request.requestID
        result.scores = request.candidates.map { Double($0.text.count) }
        result.rewardModelHash = rewardModel
        dispatcher.rewardResult(from: Array(worker.utf8), result, now: .now)
    }

    /// Waits (up to 30 s) until `count` requests have been sent.
    private func waitForSent(_ count: Int) async throws {
        try await waitUntil("\(count) reward requests sent") { sent.all.count >= count }
    }

    /// Lets the work handed in last wait past `noWorkerWait` for a worker.
    private func passWaitForAWorker() async throws {
        try await waitUntil("work waiting for a worker") { dispatcher.snapshot(now: .now).pendingRequests > 0 }
        dispatcher.tick(now: .now + .seconds(1))
    }

    private func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    private struct TimedOut: Error, CustomStringConvertible {
        let what: String
        var description: String { "timed out waiting for \(what)" }
    }

    private static func request(_ answers: [String]) -> ScoreRequest {
        ScoreRequest(scoring: answers, topic: .caption, question: "q", imageRef: nil, templates: .builtIn)
    }

    private static let answers = [
        "<SUMMARY>a</SUMMARY>\n\n<CAPTION>one</CAPTION>", "<SUMMARY>a</SUMMARY>\n\n<CAPTION>three</CAPTION>",
        "<SUMMARY>b</SUMMARY>\n\n<CAPTION>fives</CAPTION>"
    ]

    /// Three candidates over workers of 2 and 1 credits go out 2 + 1; each request carries its
    /// candidates' distinct prefixes once, and the scores come back in candidate order.
    @Test func scorerCallIsSplitByCreditsWithEachPrefixSentOnce() async throws {
        #expect(register("r1", credits: 2, rewardModel: "reward-x") == nil)
        #expect(register("r2", credits: 1, rewardModel: "reward-x") == nil)
        let job = JobContext(id: "job", image: nil, beam: 3)
        async let scores = dispatcher.score(Self.request(Self.answers), scorer: nil, job: job)
        try await waitForSent(2)
        let requests = sent.all
        #expect(requests.map(\.worker) == ["r1", "r2"])
        #expect(requests[0].request.assistantPrefixes == ["<SUMMARY>a</SUMMARY>\n\n"])
        #expect(requests[0].request.candidates.map(\.text) == ["<CAPTION>one</CAPTION>", "<CAPTION>three</CAPTION>"])
        #expect(requests[1].request.assistantPrefixes == ["<SUMMARY>b</SUMMARY>\n\n"])
        for (worker, request) in requests { answer(worker, request, rewardModel: "reward-x") }
        let measured = try await scores
        #expect(measured.scores == Self.answers.map { Double($0.components(separatedBy: "\n\n").last!.count) })
        #expect(measured.rewardModel == "reward-x")
        #expect(job.rewardModel.identity == "reward-x")
    }

    /// Once a job's scores came from one reward model, its later calls wait for that model: a worker of
    /// another reward model (registered after the first one left) is never sent them, and the call
    /// fails with no_worker naming both models.
    @Test func jobKeepsItsRewardModel() async throws {
        #expect(register("r1", credits: 4, rewardModel: "reward-x") == nil)
        #expect(register("r2", credits: 4, rewardModel: "reward-y")?.code == .modelMismatch, "one reward model per cluster")
        let job = JobContext(id: "job", image: nil, beam: 3)
        async let first = dispatcher.score(Self.request(Self.answers), scorer: nil, job: job)
        try await waitForSent(1)
        answer("r1", sent.all[0].request, rewardModel: "reward-x")
        _ = try await first

        dispatcher.disconnect(from: Array("r1".utf8), reason: "leaving", now: .now)
        #expect(register("r2", credits: 4, rewardModel: "reward-y") == nil, "no reward worker remains: another model may come")
        let second = Task { try await dispatcher.score(Self.request(Self.answers), scorer: nil, job: job) }
        try await passWaitForAWorker()
        let error = await #expect(throws: ClusterError.self) { try await second.value }
        #expect(error?.code == .noWorker)
        #expect(
            error?.message.contains("reward model reward-x") == true && error?.message.contains("reward-y") == true,
            "\(error?.message ?? "")")
        #expect(sent.all.count == 1, "nothing went to r2")

        // Another job is free to use the cluster's reward model now.
        let other = JobContext(id: "other", image: nil, beam: 3)
        async let scores = dispatcher.score(Self.request(Self.answers), scorer: nil, job: other)
        try await waitForSent(2)
        #expect(sent.all[1].worker == "r2")
        answer("r2", sent.all[1].request, rewardModel: "reward-y")
        #expect(try await scores.rewardModel == "reward-y")
    }

    /// A swires job calibrated on one scorer is sent only to workers of that scorer.
    @Test func calibratedJobWaitsForItsScorer() async throws {
        #expect(register("r1", credits: 4, rewardModel: "reward-x", scorer: "reward-model:x") == nil)
        let job = JobContext(id: "job", image: nil, beam: 3)
        let call = Task { try await dispatcher.score(Self.request(Self.answers), scorer: "self-reward", job: job) }
        try await passWaitForAWorker()
        let error = await #expect(throws: ClusterError.self) { try await call.value }
        #expect(error?.message.contains("scorer self-reward") == true, "\(error?.message ?? "")")
        #expect(sent.all.isEmpty)
    }
}
