import Foundation
import Logging
import Synchronization
import Transport
import Wire

/// A client of the coordinator: submits a job and follows it to its result, asks for a job by id,
/// cancels one, lists its jobs, or asks for status.
///
/// One request at a time. The link heartbeats, and the coordinator answers each beat saying whether
/// it knows this client; if it does not (it restarted) or the link had to reconnect, the client
/// submits its job again — resubmission is idempotent, and a restarted coordinator answers from its
/// journal or runs the job again.
public final class Client: Sendable {
    private enum Pending: Sendable {
        case submit(
            Stagebeam_V1_SubmitJob, onEvent: @Sendable (Stagebeam_V1_JobEvent) -> Void,
            CheckedContinuation<Stagebeam_V1_JobResult, any Error>)
        case status(CheckedContinuation<Stagebeam_V1_StatusReply, any Error>)
        /// CancelJob or GetJob: answered by the job's JobResult (or an error naming the job).
        case job(Stagebeam_V1_Envelope.OneOf_Body, jobID: String, CheckedContinuation<Stagebeam_V1_JobResult, any Error>)
        case list(Stagebeam_V1_ListJobs, CheckedContinuation<Stagebeam_V1_JobList, any Error>)
    }

    private let codec = EnvelopeCodec()
    private let policy: HeartbeatPolicy
    private let logger: Logger
    private let link: DealerLink
    /// The request waiting for its answer, and when it (or its resubmission) last went out.
    private let state = Mutex<(pending: Pending?, lastSent: ContinuousClock.Instant)>((nil, .now))
    /// Whether this client submitted a job or waited for one (the coordinator counts it as waiting).
    private let waitedForJobs = Mutex(false)

    /// `curve`: keys for a coordinator that requires them.
    public init(
        context: ZMQContext, endpoint: String, heartbeat: HeartbeatPolicy = HeartbeatPolicy(interval: .milliseconds(500), missedLimit: 6),
        curve: CurveRole? = nil, logger: Logger = Logger(label: "client")
    ) throws {
        policy = heartbeat
        self.logger = logger
        var id = SystemRandomNumberGenerator()
        // The link's handlers reach the client through this box: the link is made before the client
        // is whole, and must not keep it alive.
        let reference = ClientReference()
        link = try DealerLink(
            context: context,
            configuration: .init(
                endpoint: endpoint, routingID: Array("client-\(String(id.next(), radix: 36))".utf8), heartbeat: heartbeat,
                backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(2)), name: "client-link", curve: curve),
            greeting: { reference.client?.currentRequest() ?? Self.beatFrames() },
            heartbeat: { Self.beatFrames() },
            onMessage: { frames in reference.client?.handle(frames) })
        reference.client = self
    }

    /// Closes the link. A client that has waited for a job says goodbye first, so that the
    /// coordinator cancels its jobs not submitted `detached` at once rather than after its client
    /// timeout.
    public func close() {
        if waitedForJobs.withLock({ $0 }), let frame = try? codec.encode(.disconnect(Stagebeam_V1_Disconnect())) {
            try? link.send([frame])
            // Give the link's thread a moment to put the goodbye on the wire.
            Thread.sleep(forTimeInterval: 0.05)
        }
        link.close()
    }

    /// Submits `job` (an empty job id gets a fresh one here, so that the job can be asked for again)
    /// and returns its result. `onEvent` sees progress when `job.streamEvents` is set.
    public func submit(
        _ job: Stagebeam_V1_SubmitJob,
        onEvent: @escaping @Sendable (Stagebeam_V1_JobEvent) -> Void = { _ in }
    ) async throws -> Stagebeam_V1_JobResult {
        var job = job
        if job.jobID.isEmpty { job.jobID = UUID().uuidString.lowercased() }
        let frame = try codec.encode(.submitJob(job))
        waitedForJobs.withLock { $0 = true }
        return try await cancellable {
            try await withCheckedThrowingContinuation { continuation in
                state.withLock { $0 = (.submit(job, onEvent: onEvent, continuation), .now) }
                if Task.isCancelled { return finish(with: .failure(CancellationError())) }
                sendOrFail([frame])
            }
        }
    }

    public func status() async throws -> Stagebeam_V1_StatusReply {
        let frame = try codec.encode(.statusRequest(Stagebeam_V1_StatusRequest()))
        return try await cancellable {
            try await withCheckedThrowingContinuation { continuation in
                state.withLock { $0 = (.status(continuation), .now) }
                if Task.isCancelled { return finish(with: .failure(CancellationError())) }
                sendOrFail([frame])
            }
        }
    }

    /// Cancels job `jobID`; returns its final result (cancelled, or what it reached before).
    public func cancel(jobID: String, reason: String = "") async throws -> Stagebeam_V1_JobResult {
        var cancel = Stagebeam_V1_CancelJob()
        cancel.jobID = jobID
        cancel.reason = reason
        return try await jobRequest(.cancelJob(cancel), jobID: jobID)
    }

    /// Job `jobID` by id alone: its final result, or with `wait` false and the job unfinished, its
    /// progress (status queued or running). With `wait` the answer is the final result.
    public func job(_ jobID: String, wait: Bool = false, recordSearch: Bool = false) async throws -> Stagebeam_V1_JobResult {
        var get = Stagebeam_V1_GetJob()
        get.jobID = jobID
        get.wait = wait
        get.recordSearch = recordSearch
        if wait { waitedForJobs.withLock { $0 = true } }
        return try await jobRequest(.getJob(get), jobID: jobID)
    }

    /// The jobs of `owner` (`SubmitJob.owner`; empty: those this client submitted).
    public func jobs(owner: String = "") async throws -> Stagebeam_V1_JobList {
        var list = Stagebeam_V1_ListJobs()
        list.owner = owner
        let frame = try codec.encode(.listJobs(list))
        return try await cancellable {
            try await withCheckedThrowingContinuation { continuation in
                state.withLock { $0 = (.list(list, continuation), .now) }
                if Task.isCancelled { return finish(with: .failure(CancellationError())) }
                sendOrFail([frame])
            }
        }
    }

    private func jobRequest(_ body: Stagebeam_V1_Envelope.OneOf_Body, jobID: String) async throws -> Stagebeam_V1_JobResult {
        let frame = try codec.encode(body)
        return try await cancellable {
            try await withCheckedThrowingContinuation { continuation in
                state.withLock { $0 = (.job(body, jobID: jobID, continuation), .now) }
                if Task.isCancelled { return finish(with: .failure(CancellationError())) }
                sendOrFail([frame])
            }
        }
    }

    /// Cancelling the waiting task (e.g. a timeout racing it) ends the wait with `CancellationError`
    /// and frees the client for another request; a job submitted goes on at the coordinator.
    private func cancellable<T>(_ wait: () async throws -> T) async throws -> T {
        try await withTaskCancellationHandler {
            try await wait()
        } onCancel: {
            finish(with: .failure(CancellationError()))
        }
    }

    // MARK: Link thread

    private func sendOrFail(_ frames: [[UInt8]]) {
        do {
            try link.send(frames)
        } catch {
            finish(with: .failure(error))
        }
    }

    private func currentRequest() -> [[UInt8]]? {
        state.withLock { state in
            switch state.pending {
            case .submit(let job, _, _): [(try? codec.encode(.submitJob(job))) ?? []]
            case .status: [(try? codec.encode(.statusRequest(Stagebeam_V1_StatusRequest()))) ?? []]
            case .job(let body, _, _): [(try? codec.encode(body)) ?? []]
            case .list(let list, _): [(try? codec.encode(.listJobs(list))) ?? []]
            case nil: nil
            }
        }
    }

    private static func beatFrames() -> [[UInt8]] {
        [(try? EnvelopeCodec().encode(.heartbeat(Stagebeam_V1_Heartbeat()))) ?? []]
    }

    private func handle(_ frames: [[UInt8]]) {
        guard frames.count == 1 else {
            return logger.warning("message ignored", metadata: ["error": "expected one frame, got \(frames.count)"])
        }
        let body: Stagebeam_V1_Envelope.OneOf_Body
        do {
            body = try codec.decode(frames[0])
        } catch {
            return logger.warning("undecodable message from the coordinator", metadata: ["error": "\(error)"])
        }
        let current = state.withLock { $0.pending }
        switch (body, current) {
        case (.jobEvent(let event), .submit(let job, let onEvent, _)) where event.jobID == job.jobID:
            onEvent(event)
        case (.jobResult(let result), .submit(let job, _, _)) where result.jobID == job.jobID:
            finish(with: .success(.jobResult(result)))
        case (.statusReply(let reply), .status):
            finish(with: .success(.statusReply(reply)))
        case (.error(let error), .submit(let job, _, _)) where error.jobID == job.jobID || error.jobID.isEmpty:
            finish(with: .failure(ClusterError(error)))
        case (.error(let error), .status):
            finish(with: .failure(ClusterError(error)))
        case (.jobResult(let result), .job(_, let jobID, _)) where result.jobID == jobID:
            finish(with: .success(.jobResult(result)))
        case (.error(let error), .job(_, let jobID, _)) where error.jobID == jobID || error.jobID.isEmpty:
            finish(with: .failure(ClusterError(error)))
        case (.jobList(let list), .list):
            finish(with: .success(.jobList(list)))
        case (.error(let error), .list):
            finish(with: .failure(ClusterError(error)))
        case (.heartbeat(let beat), .submit(let job, _, _)) where !beat.known:
            // The submission goes out before any beat on a connection, so an "unknown" answer means
            // the coordinator lost it; still, resubmit at most once per interval.
            if resendDue(), let frame = try? codec.encode(.submitJob(job)) {
                logger.notice(
                    "the coordinator does not know the job (restarted?): submitting it again", metadata: ["job_id": "\(job.jobID)"])
                try? link.send([frame])
            }
        case (.heartbeat(let beat), .job(.getJob(let get), let jobID, _)) where !beat.known && get.wait:
            // Waiting for a job the coordinator no longer counts this client for: ask again (a
            // restarted coordinator reloads the job from its journal).
            if resendDue(), let frame = try? codec.encode(.getJob(get)) {
                logger.notice(
                    "the coordinator does not know this client (restarted?): asking for the job again", metadata: ["job_id": "\(jobID)"])
                try? link.send([frame])
            }
        default:
            break // job accepted, heartbeats, and answers to earlier requests
        }
    }

    /// Whether a request may go out again now: at most once per heartbeat interval.
    private func resendDue() -> Bool {
        state.withLock { state in
            guard ContinuousClock.now - state.lastSent > policy.interval else { return false }
            state.lastSent = .now
            return true
        }
    }

    private func finish(with outcome: Result<Stagebeam_V1_Envelope.OneOf_Body, any Error>) {
        let request: Pending? = state.withLock { state in
            defer { state.pending = nil }
            return state.pending
        }
        switch (request, outcome) {
        case (.submit(_, _, let continuation), .success(.jobResult(let result))): continuation.resume(returning: result)
        case (.status(let continuation), .success(.statusReply(let reply))): continuation.resume(returning: reply)
        case (.job(_, _, let continuation), .success(.jobResult(let result))): continuation.resume(returning: result)
        case (.list(_, let continuation), .success(.jobList(let list))): continuation.resume(returning: list)
        case (.submit(_, _, let continuation), .failure(let error)): continuation.resume(throwing: error)
        case (.status(let continuation), .failure(let error)): continuation.resume(throwing: error)
        case (.job(_, _, let continuation), .failure(let error)): continuation.resume(throwing: error)
        case (.list(_, let continuation), .failure(let error)): continuation.resume(throwing: error)
        case (.submit(_, _, let continuation), .success): continuation.resume(throwing: ClusterError(.internal, "mismatched reply"))
        case (.status(let continuation), .success): continuation.resume(throwing: ClusterError(.internal, "mismatched reply"))
        case (.job(_, _, let continuation), .success): continuation.resume(throwing: ClusterError(.internal, "mismatched reply"))
        case (.list(_, let continuation), .success): continuation.resume(throwing: ClusterError(.internal, "mismatched reply"))
        case (nil, _): break
        }
    }
}

/// The client, for its link's handlers (see `Client.init`).
private final class ClientReference: Sendable {
    private struct Weak { weak var value: Client? }
    private let reference = Mutex(Weak())

    var client: Client? {
        get { reference.withLock { $0.value } }
        set { reference.withLock { $0.value = newValue } }
    }
}
