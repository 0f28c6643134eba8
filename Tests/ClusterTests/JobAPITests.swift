import Cluster
import ClusterTestSupport
import Foundation
import SwiftProtobuf
import Testing
import Transport
import Wire

/// A peer written from the schema alone, as a third-party client or worker would be: a DEALER
/// socket, envelopes made by hand with the protocol version it chooses, and a heartbeat every
/// `beat` while it waits. It records the versions of the envelopes it receives.
final class SchemaPeer {
    let socket: ZMQSocket
    let version: UInt32
    /// 0: no range (what a version-1 peer sends).
    let oldest: UInt32
    let beat: Duration
    private var lastBeat = ContinuousClock.now
    /// `protocol_version` of every envelope received.
    private(set) var versionsReceived: [UInt32] = []
    /// Messages received that `next` skipped over, in order.
    private(set) var skipped: [Stagebeam_V1_Envelope.OneOf_Body] = []
    var heartbeat = Stagebeam_V1_Heartbeat()

    init(
        context: ZMQContext, endpoint: String, id: String, version: UInt32 = EnvelopeCodec.protocolVersion,
        oldest: UInt32 = EnvelopeCodec.oldestProtocolVersion, beat: Duration = .milliseconds(100)
    ) throws {
        socket = try ZMQSocket(context: context, kind: .dealer)
        try socket.setRoutingID(Array("\(id)-\(UUID().uuidString.prefix(6))".utf8))
        try socket.connect(endpoint)
        (self.version, self.oldest, self.beat) = (version, oldest, beat)
    }

    func send(_ body: Stagebeam_V1_Envelope.OneOf_Body) throws {
        var envelope = Stagebeam_V1_Envelope()
        envelope.protocolVersion = version
        envelope.minProtocolVersion = oldest
        envelope.body = body
        try socket.send([try envelope.serializedBytes()])
    }

    /// The first message `accept` maps to a value, heartbeating meanwhile; heartbeats are dropped,
    /// other messages kept in `skipped`.
    func next<T>(
        _ what: String, timeout: Duration = .seconds(20), _ accept: (Stagebeam_V1_Envelope.OneOf_Body) -> T?
    ) throws -> T {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = try poll(waiting: .milliseconds(20), accept) { return value }
        }
        throw ChildProcessError("\(what): nothing within \(timeout); received \(skipped.map(EnvelopeCodec.name(of:)))")
    }

    /// `next` for async tests whose own tasks must run meanwhile (a `Client` waiting for its job):
    /// between looks at the socket it sleeps instead of blocking, so the test does not hold a
    /// thread of the tasks' pool, which has one per core.
    func arriving<T>(
        _ what: String, timeout: Duration = .seconds(20), _ accept: (Stagebeam_V1_Envelope.OneOf_Body) -> T?
    ) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = try poll(waiting: .zero, accept) { return value }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ChildProcessError("\(what): nothing within \(timeout); received \(skipped.map(EnvelopeCodec.name(of:)))")
    }

    /// Heartbeats if one is due and reads at most one message (waiting up to `waiting` for it): its
    /// value when `accept` maps it to one; heartbeats are dropped, other messages kept in `skipped`.
    private func poll<T>(waiting: Duration, _ accept: (Stagebeam_V1_Envelope.OneOf_Body) -> T?) throws -> T? {
        try beatIfDue()
        guard let frames = try socket.receive(timeout: waiting) else { return nil }
        let envelope = try Stagebeam_V1_Envelope(serializedBytes: frames.last!)
        versionsReceived.append(envelope.protocolVersion)
        guard let body = envelope.body else { return nil }
        if case .heartbeat = body { return nil }
        if let value = accept(body) { return value }
        skipped.append(body)
        return nil
    }

    /// Keeps heartbeating for `duration`, keeping what arrives in `skipped`.
    func idle(for duration: Duration) throws {
        _ = try? next("idle", timeout: duration) { _ -> Bool? in nil }
    }

    private func beatIfDue() throws {
        guard ContinuousClock.now - lastBeat >= beat else { return }
        lastBeat = .now
        heartbeat.sequence += 1
        try send(.heartbeat(heartbeat))
    }

    // Answers a client waits for.

    func result(of id: String, timeout: Duration = .seconds(60)) throws -> Stagebeam_V1_JobResult {
        try next("the result of \(id)", timeout: timeout) { body in
            if case .jobResult(let result) = body, result.jobID == id { return result }
            return nil
        }
    }

    func error(timeout: Duration = .seconds(20)) throws -> Stagebeam_V1_Error {
        try next("an error", timeout: timeout) { body in
            if case .error(let error) = body { return error }
            return nil
        }
    }

    func accepted(_ id: String) throws -> Stagebeam_V1_JobAccepted {
        try next("the acceptance of \(id)") { body in
            if case .jobAccepted(let accepted) = body, accepted.jobID == id { return accepted }
            return nil
        }
    }

    func status() throws -> Stagebeam_V1_StatusReply {
        try send(.statusRequest(Stagebeam_V1_StatusRequest()))
        return try next("a status reply") { body in
            if case .statusReply(let reply) = body { return reply }
            return nil
        }
    }

    func get(_ id: String, wait: Bool = false) throws -> Stagebeam_V1_Envelope.OneOf_Body {
        var get = Stagebeam_V1_GetJob()
        get.jobID = id
        get.wait = wait
        try send(.getJob(get))
        return try next("an answer about \(id)", timeout: .seconds(60)) { body in
            switch body {
            case .jobResult(let result) where result.jobID == id: body
            case .error(let error) where error.jobID == id: body
            default: nil
            }
        }
    }

    func cancel(_ id: String, reason: String = "") throws -> Stagebeam_V1_Envelope.OneOf_Body {
        var cancel = Stagebeam_V1_CancelJob()
        cancel.jobID = id
        cancel.reason = reason
        try send(.cancelJob(cancel))
        return try next("an answer to cancelling \(id)") { body in
            switch body {
            case .jobResult(let result) where result.jobID == id: body
            case .error(let error) where error.jobID == id: body
            default: nil
            }
        }
    }

    /// Registers as a worker serving both roles with `credits`.
    func register(workerID: String, credits: UInt32) throws {
        var ready = Stagebeam_V1_Ready()
        ready.protocolVersion = version
        ready.workerID = workerID
        ready.modelName = "held"
        ready.modelHash = String(repeating: "ab", count: 32)
        ready.roles = [.generate, .judge]
        ready.maxBatchSequences = credits
        heartbeat.creditsAvailable = credits
        try send(.ready(ready))
    }

    func generateRequest() throws -> Stagebeam_V1_GenerateRequest {
        try next("a generate request", Self.generateRequest)
    }

    func arrivingGenerateRequest() async throws -> Stagebeam_V1_GenerateRequest {
        try await arriving("a generate request", Self.generateRequest)
    }

    private static func generateRequest(_ body: Stagebeam_V1_Envelope.OneOf_Body) -> Stagebeam_V1_GenerateRequest? {
        if case .generateRequest(let request) = body { return request }
        return nil
    }
}

extension Stagebeam_V1_Envelope.OneOf_Body {
    var result: Stagebeam_V1_JobResult? {
        if case .jobResult(let result) = self { return result }
        return nil
    }

    var errorCode: Stagebeam_V1_ErrorCode? {
        if case .error(let error) = self { return error.code }
        return nil
    }
}

extension ClusterProcessTests {
    /// A worker peer that holds its requests: a job cancelled while its request is in flight ends
    /// CANCELLED at once (its client and everyone waiting told), the worker's late answer is
    /// discarded without an error and its credits come back; a queued job is cancelled without
    /// running; a job past its deadline fails with deadline_exceeded and frees its work; unknown ids
    /// get unknown_job; a cancelled job stays cancelled. The worker speaks protocol version 1: every
    /// request reaches it in version 1.
    @Test func cancelAndDeadlineEndJobsAndFreeTheirWorkers() throws {
        let scratch = try Scratch()
        // The held worker beats only while the test reads its socket: a long liveness keeps it registered.
        let cluster = try LocalCluster(scratch: scratch, liveness: 200, coordinatorArguments: ["--max-running-jobs", "1"])
        let context = try ZMQContext()
        let worker = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "held-worker", version: 1, oldest: 0)
        try worker.register(workerID: "held", credits: 4)
        try cluster.coordinator.wait("the held worker to register") { _ in cluster.registrations(of: "held") > 0 ? true : nil }
        let client = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "canceller")

        var running = TestJob(beam: 2).submitJob(id: "cancel-running")
        running.streamEvents = true
        try client.send(.submitJob(running))
        _ = try client.accepted("cancel-running")
        let queued = TestJob(question: "Which way is north?", beam: 2).submitJob(id: "cancel-queued")
        try client.send(.submitJob(queued))
        _ = try client.accepted("cancel-queued")
        let held = try worker.generateRequest()
        #expect(try client.get("cancel-queued").result?.status == .queued)
        #expect(held.jobID == "cancel-running" && held.n == 2)

        // The queued job, never started; then the running one, while its request is on the worker.
        let cancelledQueued = try #require(try client.cancel("cancel-queued").result)
        #expect(cancelledQueued.status == .cancelled && cancelledQueued.stages.isEmpty)
        let cancelled = try #require(try client.cancel("cancel-running", reason: "user pressed stop").result)
        #expect(cancelled.status == .cancelled)
        #expect(cancelled.error.code == .cancelled && cancelled.error.message.contains("user pressed stop"), "\(cancelled.error)")
        #expect(try client.status().workers.first?.inFlightSequences == 2, "the worker still decodes the abandoned request")

        // The worker's late answer is discarded without an error, and its credits come back.
        var answer = Stagebeam_V1_GenerateResult()
        answer.requestID = held.requestID
        answer.jobID = held.jobID
        answer.workerID = "held"
        answer.candidates = held.seeds.map { seed in
            var candidate = Stagebeam_V1_GeneratedCandidate()
            candidate.text = "Late.</SUMMARY>"
            candidate.tokenCount = 3
            candidate.finishReason = .stop
            candidate.seed = seed
            return candidate
        }
        try worker.send(.generateResult(answer))
        try cluster.coordinator.wait("the late answer to be ignored") { child in
            child.logged("late answer ignored", ["request_id": held.requestID]).isEmpty ? nil : true
        }
        let freed = try #require(try client.status().workers.first)
        #expect(freed.inFlightSequences == 0 && freed.creditsAvailable == 4, "\(freed)")
        try worker.idle(for: .milliseconds(300))
        #expect(!worker.skipped.contains { $0.errorCode != nil }, "the worker was sent no error: \(worker.skipped)")
        #expect(!worker.skipped.contains { if case .generateRequest = $0 { return true } else { return false } })

        // Cancelled stays cancelled: asked for, cancelled again, or submitted again.
        #expect(try client.get("cancel-running").result?.status == .cancelled)
        #expect(try client.cancel("cancel-running").result?.status == .cancelled)
        try client.send(.submitJob(running))
        #expect(try client.accepted("cancel-running").alreadyKnown)
        #expect(try client.result(of: "cancel-running").status == .cancelled)
        #expect(try client.cancel("no-such-job").errorCode == .unknownJob)
        #expect(try client.get("no-such-job").errorCode == .unknownJob)

        // A deadline: the job fails with deadline_exceeded while its request is on the worker.
        var late = TestJob(question: "How tall is a giraffe?", beam: 2).submitJob(id: "deadline-job")
        late.deadlineMs = 400
        try client.send(.submitJob(late))
        let lateRequest = try worker.generateRequest()
        #expect(lateRequest.jobID == "deadline-job")
        let expired = try client.result(of: "deadline-job", timeout: .seconds(10))
        #expect(expired.status == .failed && expired.error.code == .deadlineExceeded, "\(expired.error)")
        #expect(expired.totalMs >= 400)
        #expect(worker.versionsReceived.allSatisfy { $0 == 1 }, "\(Set(worker.versionsReceived))")
        let states = try client.status().jobs.reduce(into: [String: String]()) { $0[$1.jobID] = $1.state }
        #expect(states == ["cancel-running": "cancelled", "cancel-queued": "cancelled", "deadline-job": "failed"])
    }

    /// A job is cancelled when its client says goodbye or goes silent for the client timeout; a
    /// detached job runs on without its client.
    @Test func clientsThatLeaveCancelTheirJobsUnlessDetached() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch, liveness: 200, coordinatorArguments: ["--client-timeout-s", "1"])
        let context = try ZMQContext()
        let worker = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "held-worker")
        try worker.register(workerID: "held", credits: 16)
        try cluster.coordinator.wait("the held worker to register") { _ in cluster.registrations(of: "held") > 0 ? true : nil }
        let watcher = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "watcher")

        func submit(_ id: String, detached: Bool = false) throws -> SchemaPeer {
            let client = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: id)
            var job = TestJob(question: "Question of \(id)?", beam: 2).submitJob(id: id)
            job.detached = detached
            try client.send(.submitJob(job))
            _ = try client.accepted(id)
            return client
        }
        _ = try submit("goes-silent")
        _ = try submit("detached", detached: true)
        try submit("says-goodbye").send(.disconnect(Stagebeam_V1_Disconnect()))

        // Polled by id (a waiting watcher would count as a client of the job).
        func state(_ id: String, until wanted: Stagebeam_V1_JobStatus) throws -> Stagebeam_V1_JobResult {
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                let result = try #require(try watcher.get(id).result)
                if result.status == wanted || ContinuousClock.now > deadline { return result }
                try watcher.idle(for: .milliseconds(100))
            }
        }
        let goodbye = try state("says-goodbye", until: .cancelled)
        #expect(goodbye.status == .cancelled && goodbye.error.message.contains("disconnected"), "\(goodbye)")
        let silent = try state("goes-silent", until: .cancelled)
        #expect(silent.status == .cancelled && silent.error.message.contains("silent"), "\(silent)")
        #expect(silent.totalMs >= 1000)
        try watcher.idle(for: .milliseconds(500))
        #expect(try watcher.get("detached").result?.status == .running)
        #expect(try watcher.cancel("detached").result?.status == .cancelled)
    }

    /// A client of protocol version 1 (no range, equal versions only) is served by this version-2
    /// coordinator in version 1; a result is fetched by id alone, also after a coordinator restart,
    /// with the job's prompt token counts; a job not finished reads as running; a client lists its
    /// own jobs; a peer whose range does not meet the coordinator's gets version_mismatch naming
    /// both ranges.
    @Test func oldClientsResultsByIdAndJobLists() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("w", maxBatch: 4)
        let context = try ZMQContext()

        let old = try SchemaPeer(
            context: context, endpoint: cluster.endpoint, id: "v1-client", version: 1, oldest: 0, beat: .milliseconds(500))
        var job = TestJob(beam: 2).submitJob(id: "from-v1")
        job.streamEvents = true
        try old.send(.submitJob(job))
        let result = try old.result(of: "from-v1")
        #expect(result.status == .succeeded, "\(result.error)")
        #expect(old.versionsReceived.allSatisfy { $0 == 1 }, "answered in version 1: \(Set(old.versionsReceived))")
        #expect(old.skipped.contains { if case .jobEvent = $0 { return true } else { return false } })
        #expect(!old.skipped.contains { $0.errorCode != nil })
        #expect(result.counts.candidatePromptTokens > 0 && result.counts.candidatePromptTokens >= result.counts.candidateReusedPrefixTokens)
        #expect(result.counts.judgeCalls > 0 && result.counts.judgePromptTokens > 0, "\(result.counts)")

        let client = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "v2-client")
        let fetched = try #require(try client.get("from-v1").result)
        #expect(fetched.status == .succeeded && fetched.answer == result.answer && fetched.stages == result.stages)
        #expect(fetched.counts == result.counts)

        // A job of a named owner, listed from another connection; one of this connection, while it runs.
        var owned = TestJob(question: "How many wheels does a bicycle have?", beam: 2).submitJob(id: "owned")
        owned.owner = "team-a"
        try client.send(.submitJob(owned))
        _ = try client.result(of: "owned")
        let mine = TestJob(question: "What colour is the sky?", beam: 4, maxStageTokens: 24).submitJob(id: "mine")
        try client.send(.submitJob(mine))
        _ = try client.accepted("mine")
        let progress = try #require(try client.get("mine").result)
        #expect([.queued, .running].contains(progress.status), "\(progress.status)")
        var list = Stagebeam_V1_ListJobs()
        try client.send(.listJobs(list))
        let listed = try client.next("my jobs") { body -> Stagebeam_V1_JobList? in
            if case .jobList(let jobs) = body { return jobs } else { return nil }
        }
        #expect(listed.jobs.map(\.jobID) == ["mine"])
        list.owner = "team-a"
        let other = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "team-member")
        try other.send(.listJobs(list))
        let team = try other.next("team-a's jobs") { body -> Stagebeam_V1_JobList? in
            if case .jobList(let jobs) = body { return jobs } else { return nil }
        }
        #expect(team.jobs.map(\.jobID) == ["owned"] && team.jobs.first?.state == "succeeded")
        _ = try client.result(of: "mine")

        // Ranges that do not meet.
        let future = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "v4-client", version: 4, oldest: 3)
        try future.send(.statusRequest(Stagebeam_V1_StatusRequest()))
        let mismatch = try future.error()
        #expect(mismatch.code == .versionMismatch)
        #expect(mismatch.message.contains("3…4") && mismatch.message.contains("1…2"), "\(mismatch.message)")

        // After a restart the journal answers.
        cluster.coordinator.signal(SIGKILL)
        try cluster.startCoordinator(endpoint: "tcp://127.0.0.1:*")
        let later = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "after-restart")
        let journaled = try #require(try later.get("from-v1").result)
        #expect(journaled.status == .succeeded && journaled.answer == result.answer && journaled.counts == result.counts)
        #expect(try later.get("never-submitted").errorCode == .unknownJob)
    }
}

extension ClusterProcessTests {
    /// The Swift `Client`'s job API: a job cancelled from another client ends the submitter's wait
    /// with the cancelled result; it is fetched and listed by id; a client closed while waiting
    /// says goodbye, which cancels its job.
    @Test func swiftClientCancelsFetchesListsAndSaysGoodbye() async throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch, liveness: 200)
        let context = try ZMQContext()
        let worker = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "held-worker")
        try worker.register(workerID: "held", credits: 8)
        try cluster.coordinator.wait("the held worker to register") { _ in cluster.registrations(of: "held") > 0 ? true : nil }

        let submitter = try Client(context: context, endpoint: cluster.endpoint)
        let other = try Client(context: context, endpoint: cluster.endpoint)
        defer { other.close() }
        let waiting = Task { try await submitter.submit(TestJob(beam: 2).submitJob(id: "swift-cancel")) }
        _ = try await worker.arrivingGenerateRequest()
        #expect(try await other.job("swift-cancel").status == .running)
        let cancelled = try await other.cancel(jobID: "swift-cancel", reason: "from the other client")
        #expect(cancelled.status == .cancelled && cancelled.error.message.contains("from the other client"))
        #expect(try await waiting.value.status == .cancelled)
        #expect(try await submitter.jobs().jobs.map(\.jobID) == ["swift-cancel"])
        #expect(try await other.jobs().jobs.isEmpty)
        do {
            _ = try await other.job("no-such-job")
            Issue.record("an unknown job was answered")
        } catch let error as ClusterError {
            #expect(error.code == .unknownJob)
        }

        // Closing a client that waits for a job cancels the job at once.
        let leaving = Task { try await submitter.submit(TestJob(question: "Where is the sun?", beam: 2).submitJob(id: "swift-goodbye")) }
        _ = try await worker.arrivingGenerateRequest()
        leaving.cancel()
        _ = try? await leaving.value
        submitter.close()
        var gone = try await other.job("swift-goodbye")
        for _ in 0..<50 where gone.status == .running {
            try await Task.sleep(for: .milliseconds(100))
            gone = try await other.job("swift-goodbye")
        }
        #expect(gone.status == .cancelled && gone.error.message.contains("disconnected"), "\(gone)")

        // Clients waiting across a coordinator restart ask again, and hear the job's end.
        let third = try Client(context: context, endpoint: cluster.endpoint)
        let watcher = try Client(context: context, endpoint: cluster.endpoint)
        defer { (third.close(), watcher.close()) }
        var restarted = TestJob(question: "How far is the moon?", beam: 2).submitJob(id: "swift-restart")
        restarted.detached = true
        let submitted = Task { try await third.submit(restarted) }
        _ = try await worker.arrivingGenerateRequest()
        let watched = Task { try await watcher.job("swift-restart", wait: true) }
        try await Task.sleep(for: .milliseconds(300))
        let endpoint = cluster.endpoint
        cluster.coordinator.signal(SIGKILL)
        _ = try cluster.coordinator.exitStatus()
        try cluster.startCoordinator(endpoint: endpoint)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await other.cancel(jobID: "swift-restart").status == .cancelled)
        for (name, task) in [("submitter", submitted), ("watcher", watched)] {
            // A client that never hears the end is stopped (its wait then throws) after 15 s.
            let timer = Task {
                try await Task.sleep(for: .seconds(15))
                task.cancel()
            }
            let outcome = try? await task.value
            timer.cancel()
            #expect(outcome?.status == .cancelled, "\(name): \(String(describing: outcome))")
        }
    }
}
