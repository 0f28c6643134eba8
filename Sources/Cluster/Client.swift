import Foundation
import Logging
import Synchronization
import Transport
import Wire

/// A client of the coordinator: submits a job and follows it to its result, or asks for status.
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
    }

    private let codec = EnvelopeCodec()
    private let policy: HeartbeatPolicy
    private let logger: Logger
    private let link: DealerLink
    /// The request waiting for its answer, and when it (or its resubmission) last went out.
    private let state = Mutex<(pending: Pending?, lastSent: ContinuousClock.Instant)>((nil, .now))

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

    public func close() {
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
        case (.heartbeat(let beat), .submit(let job, _, _)) where !beat.known:
            // The submission goes out before any beat on a connection, so an "unknown" answer means
            // the coordinator lost it; still, resubmit at most once per interval.
            let due = state.withLock { state in
                guard ContinuousClock.now - state.lastSent > policy.interval else { return false }
                state.lastSent = .now
                return true
            }
            if due, let frame = try? codec.encode(.submitJob(job)) {
                logger.notice(
                    "the coordinator does not know the job (restarted?): submitting it again", metadata: ["job_id": "\(job.jobID)"])
                try? link.send([frame])
            }
        default:
            break // job accepted, heartbeats, and answers to earlier requests
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
        case (.submit(_, _, let continuation), .failure(let error)): continuation.resume(throwing: error)
        case (.status(let continuation), .failure(let error)): continuation.resume(throwing: error)
        case (.submit(_, _, let continuation), .success): continuation.resume(throwing: ClusterError(.internal, "mismatched reply"))
        case (.status(let continuation), .success): continuation.resume(throwing: ClusterError(.internal, "mismatched reply"))
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
