import Foundation
import Logging
import Search
import Synchronization
import Transport
import Wire

/// The cluster's coordinator: a ROUTER socket that registers workers, accepts jobs from clients,
/// runs each job's search with remote generator and judge (see `Dispatcher`), streams progress to
/// the clients that submitted it, and journals every job accepted and finished.
///
/// Bad input (undecodable frames, a wrong protocol version, unexpected messages, invalid jobs) gets a
/// typed `Error` reply and a log line; the coordinator keeps serving everyone else. Log lines about a
/// job carry its `job_id`, those about a worker its `worker_id`.
public final class Coordinator: Sendable {
    public struct Configuration: Sendable {
        /// Where to listen, e.g. `tcp://0.0.0.0:5555` (`tcp://127.0.0.1:*` picks a free port).
        public var endpoint: String
        public var journal: URL
        /// Finished jobs older than this leave the journal and the job table (nil: kept for ever).
        public var journalRetain: Duration?
        /// Workers are dead after `missedLimit` intervals without a message.
        public var heartbeat: HeartbeatPolicy
        /// How long a request may be in flight before it is sent to another worker.
        public var requestTimeout: Duration
        /// How long work may wait while no worker of its role is connected before its job fails.
        public var noWorkerWait: Duration
        /// Jobs searched at once; later ones wait in the queue.
        public var maxRunningJobs: Int
        /// Jobs accepted and not finished (running and queued) at most; past it a submission is
        /// refused with `overloaded`, naming the limit, and the client may submit again later.
        public var maxQueuedJobs: Int
        /// The images of unfinished jobs together, in bytes, at most (refused like `maxQueuedJobs`).
        public var maxQueuedImageBytes: Int
        /// Largest frame read from a peer (an image and the job around it); libzmq disconnects a peer
        /// that announces a bigger one before reading it, so no peer makes this process hold more
        /// than one such frame in progress, plus `receiveQueue` whole ones waiting to be read.
        public var maxFrameBytes: Int
        /// Frames libzmq holds per peer until the socket thread reads them.
        public var receiveQueue: Int32
        /// A submitted image over this many bytes is refused with `image_too_large`.
        public var maxImageBytes: Int
        /// CURVE: this coordinator's secret key and the public keys of the workers and clients it
        /// accepts (nil: plain TCP, anyone may connect).
        public var curve: (secretKey: String, authorizedKeys: Set<String>)?
        /// The model identity (`ModelIdentity`) every worker must serve, pinned by the operator; nil:
        /// each role's first registered worker decides (see `Dispatcher`).
        public var pinnedModel: String?
        /// The pinned model's recommended search settings (`coordinator --model`), used while no
        /// generate worker has announced its own (the two agree: the identity covers stagebeam.json).
        public var pinnedRecommendations: ModelRecommendations?
        /// Refused frames are logged once per peer per this interval, with a count of the others.
        public var refusalLogInterval: Duration
        /// A client waiting for a job that sends nothing (heartbeats included) for this long has
        /// gone: its jobs not submitted `detached` are cancelled once no client waits for them.
        public var clientTimeout: Duration

        public init(
            endpoint: String, journal: URL, heartbeat: HeartbeatPolicy = HeartbeatPolicy(interval: .milliseconds(500)),
            requestTimeout: Duration = .seconds(60), noWorkerWait: Duration = .seconds(60), maxRunningJobs: Int = 8,
            maxQueuedJobs: Int = 1024, maxQueuedImageBytes: Int = 1 << 30, maxFrameBytes: Int? = nil, receiveQueue: Int32 = 16,
            maxImageBytes: Int = 32 << 20,
            curve: (secretKey: String, authorizedKeys: Set<String>)? = nil, journalRetain: Duration? = nil, pinnedModel: String? = nil,
            pinnedRecommendations: ModelRecommendations? = nil, refusalLogInterval: Duration = .seconds(10),
            clientTimeout: Duration = .seconds(10)
        ) {
            self.clientTimeout = clientTimeout
            self.pinnedRecommendations = pinnedRecommendations
            self.curve = curve
            self.journalRetain = journalRetain
            self.pinnedModel = pinnedModel
            self.refusalLogInterval = refusalLogInterval
            self.endpoint = endpoint
            self.journal = journal
            self.heartbeat = heartbeat
            self.requestTimeout = requestTimeout
            self.noWorkerWait = noWorkerWait
            self.maxRunningJobs = maxRunningJobs
            self.maxQueuedJobs = maxQueuedJobs
            self.maxQueuedImageBytes = maxQueuedImageBytes
            // Room for the largest image and the job around it (question, judge templates).
            self.maxFrameBytes = maxFrameBytes ?? maxImageBytes + (1 << 20)
            self.receiveQueue = receiveQueue
            self.maxImageBytes = maxImageBytes
        }
    }

    /// The endpoint actually bound (a `*` port resolved).
    public var endpoint: String { loop.boundEndpoints.first ?? configuration.endpoint }
    let configuration: Configuration
    private let codec: EnvelopeCodec
    private let logger: Logger
    private let journal: Journal
    private let dispatcher: Dispatcher
    private let outbox = Outbox()
    private let loop: SocketLoop

    /// What `--metrics-port` serves (see `CoordinatorMetrics`).
    public let metrics = Metrics()

    private let authenticator: ZAPAuthenticator?
    private let compaction = Mutex<Task<Void, Never>?>(nil)
    /// Checks deadlines and silent clients (`checkJobs`) off the socket thread, so that a busy job
    /// table never delays the heartbeat answers workers depend on.
    private let jobClock = Mutex<Task<Void, Never>?>(nil)

    /// The job table. Touched from the socket thread (submissions, status), the journal's writer
    /// thread (acceptances and results made durable) and the jobs' search tasks (events, results).
    private struct Table {
        var jobs: [String: Job] = [:]
        /// Job ids in the order accepted.
        var order: [String] = []
        /// Journaled jobs waiting for a search slot, oldest first.
        var queued: [String] = []
        var running: Set<String> = []
        /// Accepted and not finished: queued, running, or still being journaled.
        var unfinished: Set<String> = []
        /// Bytes of the images of unfinished jobs.
        var imageBytes = 0
        /// Clients waiting for unfinished jobs, and when each was last heard from.
        var clientsHeard: [[UInt8]: ContinuousClock.Instant] = [:]
    }
    private let table = Mutex(Table())
    /// Refusals logged per peer.
    private let refusalLog: Mutex<RepeatLimiter<[UInt8]>>
    /// Failed security handshakes logged per (endpoint, reason).
    private let handshakeLog: Mutex<RepeatLimiter<[String]>>

    public init(context: ZMQContext, configuration: Configuration, logger: Logger = Logger(label: "coordinator")) throws {
        self.configuration = configuration
        // The authenticator must answer before the first connection arrives.
        authenticator = try configuration.curve.map {
            try ZAPAuthenticator(
                context: context, allowed: $0.authorizedKeys, logger: logger, logInterval: configuration.refusalLogInterval)
        }
        self.codec = EnvelopeCodec(maxFrameBytes: configuration.maxFrameBytes)
        self.logger = logger
        refusalLog = Mutex(RepeatLimiter(interval: configuration.refusalLogInterval))
        handshakeLog = Mutex(RepeatLimiter(interval: configuration.refusalLogInterval))
        let (journal, entries) = try Journal.open(configuration.journal, retain: configuration.journalRetain) {
            logger.warning("\($0)")
        }
        self.journal = journal
        let outbox = self.outbox
        dispatcher = Dispatcher(
            settings: .init(
                heartbeat: configuration.heartbeat, requestTimeout: configuration.requestTimeout,
                noWorkerWait: configuration.noWorkerWait, pinnedModel: configuration.pinnedModel),
            codec: codec, send: { outbox.send($0) }, logger: logger, metrics: metrics)
        if let pinned = configuration.pinnedModel {
            logger.info("model pinned", metadata: ["model_hash": "\(pinned)"])
        }
        let now = ContinuousClock.now
        table.withLock { table in
            for (id, entry) in entries {
                var job = Job(submit: entry.submit, result: entry.result, journaledSteps: entry.result == nil ? entry.steps : [:], now: now)
                job.journaled = true
                table.jobs[id] = job
                table.order.append(id)
                if !job.isFinished {
                    table.queued.append(id)
                    table.unfinished.insert(id)
                    table.imageBytes += job.submit.image.count
                }
            }
        }
        if !entries.isEmpty {
            logger.info(
                "journal replayed",
                metadata: [
                    "path": "\(configuration.journal.path)", "jobs": .stringConvertible(entries.count),
                    "unfinished": .stringConvertible(entries.filter { $0.entry.result == nil }.count)
                ])
        }
        // `onMessage` and `onTick` reach the coordinator through this box: the loop is made before
        // the coordinator is whole, and must not keep it alive.
        let handler = CoordinatorReference()
        loop = try SocketLoop(
            context: context,
            configuration: .init(
                kind: .router, bind: [configuration.endpoint], maxMessageBytes: Int64(configuration.maxFrameBytes),
                receiveHighWaterMark: configuration.receiveQueue, tick: configuration.heartbeat.interval / 2, name: "coordinator",
                curve: configuration.curve.map { .server(secretKey: $0.secretKey) }),
            handlers: .init(
                onMessage: { frames in handler.coordinator?.handle(frames) },
                onTick: { _, now in
                    handler.coordinator?.dispatcher.tick(now: now)
                    handler.coordinator?.reportHeldRefusals(now: now)
                },
                onSendFailure: { frames, error in
                    // A client that went away: the client timeout decides for its jobs, and a result
                    // stays for a resubmission or GetJob.
                    logger.notice("message undeliverable", metadata: ["peer": "\(Self.peerName(frames[0]))", "error": "\(error)"])
                },
                onError: { error, willStop in
                    logger.log(
                        level: willStop ? .critical : .error, "socket error",
                        metadata: ["error": "\(error)", "stopping": .stringConvertible(willStop)])
                },
                onHandshakeFailure: { failure in handler.coordinator?.handshakeFailed(failure) }))
        handler.coordinator = self
        outbox.attach(loop)
        CoordinatorMetrics.register(on: metrics, coordinator: self, dispatcher: dispatcher, journal: journal)
        startQueuedJobs()
        if let retain = configuration.journalRetain { startCompaction(every: Self.compactionInterval(retain)) }
        startJobClock(every: configuration.heartbeat.interval / 2)
    }

    private func startJobClock(every interval: Duration) {
        let task = Task.detached { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self, !Task.isCancelled else { return }
                self.checkJobs(now: .now)
            }
        }
        jobClock.withLock { $0 = task }
    }

    public func close() {
        compaction.withLock { $0?.cancel() }
        jobClock.withLock { $0?.cancel() }
        loop.close()
        authenticator?.close()
        journal.close()
    }

    // MARK: Messages (socket thread)

    private func handle(_ frames: [[UInt8]]) {
        let peer = frames[0]
        let now = ContinuousClock.now
        let isWorker = dispatcher.heard(from: peer, now: now)
        guard frames.count == 2 else {
            reject(peer, ClusterError(.malformedFrame, "expected one envelope frame after the routing id, got \(frames.count - 1) frames"))
            return
        }
        let envelope: EnvelopeCodec.Envelope
        do {
            envelope = try codec.decodeEnvelope(frames[1])
        } catch {
            reject(peer, ClusterError(error.code, error.message))
            return
        }
        // Answers go out in the highest protocol version both sides speak.
        let version = envelope.version
        let body = envelope.body
        if !isWorker { clientHeard(peer, now: now) }
        switch body {
        case .ready(let ready):
            if let refusal = dispatcher.ready(from: peer, ready, now: now) { reject(peer, refusal, version: version) }
        case .heartbeat:
            var beat = Stagebeam_V1_Heartbeat()
            beat.known = isWorker || isWaitingClient(peer)
            // Ahead of any job traffic queued for other peers: a late answer makes a worker reconnect.
            reply(peer, .heartbeat(beat), version: version, urgent: true)
        case .disconnect(let goodbye):
            dispatcher.disconnect(from: peer, reason: goodbye.reason, now: now)
            if !isWorker {
                clientsLeft([peer], reason: "its client disconnected" + (goodbye.reason.isEmpty ? "" : " (\(goodbye.reason))"))
            }
        case .generateResult(let result):
            dispatcher.generateResult(from: peer, result, now: now)
        case .judgeResult(let result):
            dispatcher.judgeResult(from: peer, result, now: now)
        case .generateProgress(let progress):
            dispatcher.generateProgress(from: peer, progress)
        case .rewardResult(let result):
            dispatcher.rewardResult(from: peer, result, now: now)
        case .error(let error):
            dispatcher.workerError(from: peer, error, now: now)
        case .submitJob(let submit):
            accept(submit, from: peer, version: version, now: now)
        case .statusRequest:
            reply(peer, .statusReply(status(now: now)), version: version)
        case .cancelJob(let cancel):
            cancelJob(cancel, from: peer, version: version)
        case .getJob(let get):
            getJob(get, from: peer, version: version, now: now)
        case .listJobs(let list):
            reply(peer, .jobList(listJobs(list, from: peer)), version: version)
        default:
            reject(
                peer, ClusterError(.unexpectedMessage, "a coordinator does not accept \(EnvelopeCodec.name(of: body)) messages"),
                version: version)
        }
    }

    private func reply(
        _ peer: [UInt8], _ body: Stagebeam_V1_Envelope.OneOf_Body, version: UInt32 = EnvelopeCodec.protocolVersion, urgent: Bool = false
    ) {
        do {
            outbox.send([peer, try codec.encode(body, version: version)], urgent: urgent)
        } catch {
            logger.error(
                "cannot encode a message",
                metadata: [
                    "peer": "\(Self.peerName(peer))", "message": "\(EnvelopeCodec.name(of: body))", "error": "\(error)"
                ])
        }
    }

    /// Bad frames, invalid jobs, refused workers: the peer gets the error, the log a warning — one
    /// per peer per `refusalLogInterval`, counting the refusals not logged in between (`repeats`).
    private func reject(_ peer: [UInt8], _ error: ClusterError, version: UInt32 = EnvelopeCodec.protocolVersion) {
        let (log, held) = refusalLog.withLock { $0.admit(peer, now: .now) }
        if log {
            var metadata = error.logMetadata.merging(["peer": "\(Self.peerName(peer))"]) { $1 }
            if held > 0 { metadata["repeats"] = .stringConvertible(held) }
            logger.warning("message refused", metadata: metadata)
        }
        reply(peer, .error(error.wire), version: version)
    }

    /// A peer that never got in: its security handshake failed (no CURVE keys, the wrong server key,
    /// a key the authenticator refused, or not ZeroMQ at all). libzmq names the endpoint it came in
    /// on, not its address (see `HandshakeFailure`). Logged like refusals: one line per endpoint and
    /// reason per `refusalLogInterval`, with the count of those held back (`repeats`).
    private func handshakeFailed(_ failure: HandshakeFailure) {
        let (log, held) = handshakeLog.withLock { $0.admit([failure.endpoint, failure.reason], now: .now) }
        guard log else { return }
        var metadata: Logger.Metadata = ["endpoint": "\(failure.endpoint)", "error": "\(failure.reason)", "event": "\(failure.event)"]
        if held > 0 { metadata["repeats"] = .stringConvertible(held) }
        logger.warning("handshake failed", metadata: metadata)
    }

    /// Refusals held back from peers that have since gone quiet: one line each with the count.
    private func reportHeldRefusals(now: ContinuousClock.Instant) {
        let interval = milliseconds(configuration.refusalLogInterval) / 1000
        let held = refusalLog.withLock { $0.expired(now: now) }
        for (peer, count) in held {
            logger.warning(
                "messages refused",
                metadata: [
                    "peer": "\(Self.peerName(peer))", "repeats": .stringConvertible(count), "interval_s": .stringConvertible(interval)
                ])
        }
        let failedHandshakes = handshakeLog.withLock { $0.expired(now: now) }
        for (key, count) in failedHandshakes {
            logger.warning(
                "handshakes failed",
                metadata: [
                    "endpoint": "\(key[0])", "error": "\(key[1])", "repeats": .stringConvertible(count),
                    "interval_s": .stringConvertible(interval)
                ])
        }
    }

    // MARK: Jobs

    /// Whether `peer` waits for a job of this coordinator: a heartbeat answered "unknown" makes a
    /// client submit again.
    private func isWaitingClient(_ peer: [UInt8]) -> Bool {
        table.withLock { table in table.unfinished.contains { table.jobs[$0]?.subscribers[peer] != nil } }
    }

    // MARK: The job API (cancel, get, list, deadlines, clients gone)
    //
    // A client that goes away is noticed by silence, not by ZeroMQ's disconnect events: a ROUTER's
    // socket monitor reports the file descriptor of a lost connection, not the routing id of the
    // peer behind it, and a TCP connection can stay open while the client is gone (a killed host,
    // a dropped route). Clients heartbeat while they wait, so `clientTimeout` of silence — or
    // their `Disconnect` — means gone.

    /// A sign of life from a peer that is not a worker.
    private func clientHeard(_ peer: [UInt8], now: ContinuousClock.Instant) {
        table.withLock { table in
            if table.clientsHeard[peer] != nil { table.clientsHeard[peer] = now }
        }
    }

    /// Deadlines passed and clients gone silent (the job clock, every half heartbeat interval).
    private func checkJobs(now: ContinuousClock.Instant) {
        let (late, silent): ([(String, ClusterError)], [[UInt8]]) = table.withLock { table in
            let late = table.unfinished.compactMap { id -> (String, ClusterError)? in
                guard let job = table.jobs[id], job.ending == nil, !job.finishing, let deadline = job.deadline, deadline <= now else {
                    return nil
                }
                return (
                    id,
                    ClusterError(
                        .deadlineExceeded, "the job's deadline passed (\(job.submit.deadlineMs.rounded()) ms after it was accepted)",
                        jobID: id)
                )
            }
            return (late, table.clientsHeard.filter { now - $0.value > configuration.clientTimeout }.map(\.key))
        }
        for (id, error) in late { end(id, error) }
        if !silent.isEmpty {
            clientsLeft(silent, reason: "its client went silent for \(milliseconds(configuration.clientTimeout) / 1000) s")
        }
    }

    /// Forgets `peers` as waiting clients; a job left with none, and not detached, is cancelled.
    private func clientsLeft(_ peers: [[UInt8]], reason: String) {
        let orphaned: [String] = table.withLock { table in
            for peer in peers { table.clientsHeard[peer] = nil }
            var orphaned: [String] = []
            for id in table.unfinished {
                guard var job = table.jobs[id], peers.contains(where: { job.subscribers[$0] != nil }) else { continue }
                for peer in peers { job.subscribers[peer] = nil }
                table.jobs[id] = job
                if job.subscribers.isEmpty && !job.submit.detached { orphaned.append(id) }
            }
            return orphaned
        }
        for id in orphaned { end(id, ClusterError(.cancelled, "cancelled: \(reason)", jobID: id)) }
    }

    /// Ends an unfinished job early with `error` (cancelled or past its deadline): a queued job
    /// finishes at once; a running one's work is dropped (`Dispatcher.end`) and its search, failing,
    /// finishes it with this error; one still being journaled finishes once it is.
    private func end(_ id: String, _ error: ClusterError) {
        enum Step { case none, finishQueued, stopSearch }
        let step: Step = table.withLock { table in
            guard var job = table.jobs[id], !job.isFinished, !job.finishing, job.ending == nil else { return .none }
            job.ending = error
            table.jobs[id] = job
            if let index = table.queued.firstIndex(of: id) {
                table.queued.remove(at: index)
                return .finishQueued
            }
            return table.running.contains(id) ? .stopSearch : .none
        }
        let log = { self.logger.info("job ending early", metadata: error.logMetadata.merging(["job_id": "\(id)"]) { $1 }) }
        switch step {
        case .none: break
        case .finishQueued:
            log()
            finish(id, .failure(error), usage: nil)
        case .stopSearch:
            log()
            dispatcher.end(job: id, error)
        }
    }

    private func cancelJob(_ cancel: Stagebeam_V1_CancelJob, from peer: [UInt8], version: UInt32) {
        let id = cancel.jobID
        let asking = Job.Subscriber(wantsEvents: false, wantsRecord: false, version: version)
        let finished: Stagebeam_V1_JobResult?? = table.withLock { table in
            guard var job = table.jobs[id] else { return .none }
            if let result = job.result { return .some(Job.result(result, for: asking)) }
            // The canceller hears the job's end with everyone else waiting for it.
            if job.subscribers[peer] == nil { job.subscribers[peer] = asking }
            table.jobs[id] = job
            return .some(nil)
        }
        switch finished {
        case .none:
            reject(peer, ClusterError(.unknownJob, "this coordinator knows no job '\(id)'", jobID: id), version: version)
        case .some(.some(let result)):
            reply(peer, .jobResult(result), version: version)
        case .some(.none):
            let reason = cancel.reason.isEmpty ? "cancelled by a client" : "cancelled by a client: \(cancel.reason)"
            end(id, ClusterError(.cancelled, reason, jobID: id))
        }
    }

    private func getJob(_ get: Stagebeam_V1_GetJob, from peer: [UInt8], version: UInt32, now: ContinuousClock.Instant) {
        let id = get.jobID
        let asking = Job.Subscriber(
            wantsEvents: get.wait && get.streamEvents, wantsRecord: get.recordSearch, version: version,
            wantsText: get.wait && get.streamEvents && get.streamCandidateText)
        let answer: Stagebeam_V1_JobResult?? = table.withLock { table in
            guard var job = table.jobs[id] else { return .none }
            if let result = job.result { return .some(Job.result(result, for: asking)) }
            if get.wait {
                job.subscribe(peer, asking)
                table.jobs[id] = job
                table.clientsHeard[peer] = now
                return .some(nil)
            }
            var progress = Stagebeam_V1_JobResult()
            progress.jobID = id
            progress.status = job.state == .running ? .running : .queued
            progress.currentStage = job.state == .running ? job.stage : .unspecified
            progress.queueMs = milliseconds((job.started ?? now) - job.accepted)
            progress.totalMs = milliseconds(now - job.accepted)
            return .some(progress)
        }
        switch answer {
        case .none: reject(peer, ClusterError(.unknownJob, "this coordinator knows no job '\(id)'", jobID: id), version: version)
        case .some(.some(let result)): reply(peer, .jobResult(result), version: version)
        case .some(.none): break
        }
    }

    /// The owner's jobs: unfinished ones in the order accepted, then the latest finished ones.
    private func listJobs(_ list: Stagebeam_V1_ListJobs, from peer: [UInt8]) -> Stagebeam_V1_JobList {
        let owner: Job.Owner = list.owner.isEmpty ? .connection(peer) : .named(list.owner)
        let mine: [Job] = table.withLock { table in
            let all = table.order.compactMap { table.jobs[$0] }.filter { $0.owner == owner }
            return all.filter { !$0.isFinished } + all.filter(\.isFinished).suffix(Self.finishedJobsListed)
        }
        var reply = Stagebeam_V1_JobList()
        reply.jobs = mine.map(jobInfo)
        return reply
    }

    static let finishedJobsListed = 100

    private func accept(_ submit: Stagebeam_V1_SubmitJob, from peer: [UInt8], version: UInt32, now: ContinuousClock.Instant) {
        var submit = submit
        if submit.jobID.isEmpty { submit.jobID = UUID().uuidString.lowercased() }
        let id = submit.jobID
        let subscriber = Job.Subscriber(
            wantsEvents: submit.streamEvents, wantsRecord: submit.recordSearch, version: version,
            wantsText: submit.streamEvents && submit.streamCandidateText)
        let reject = { (error: ClusterError) in self.reject(peer, error, version: version) }
        let reply = { (body: Stagebeam_V1_Envelope.OneOf_Body) in self.reply(peer, body, version: version) }
        // The search fields the job leaves unset take the cluster model's recommendations, and the
        // job is journaled filled: its settings never change after it is accepted.
        let recommendations: ModelRecommendations
        do {
            if let announced = dispatcher.announcedRecommendations() {
                recommendations = announced.isEmpty ? ModelRecommendations() : try ModelRecommendations(json: announced)
            } else {
                recommendations = configuration.pinnedRecommendations ?? ModelRecommendations()
            }
        } catch {
            reject(ClusterError(.internal, "the workers' recommended settings are unreadable: \(error)", jobID: id))
            return
        }
        if recommendations.requiresImage, submit.image.isEmpty {
            reject(ClusterError(.invalidArgument, "this cluster's model answers questions about an image only: send an image", jobID: id))
            return
        }
        // Checked before filling, which keeps only the stages it can read.
        if let stage = submit.searchStages.first(where: { Stage(wire: $0) == nil }) {
            reject(
                ClusterError(
                    .invalidArgument, "search_stages names \(stage), not one of the four stages (summary, caption, reasoning, conclusion)",
                    jobID: id))
            return
        }
        // A swires job's thresholds come from the calibration of the scorer its reward workers run.
        submit = recommendations.filled(submit, scorer: dispatcher.rewardScorer() ?? RewardCalibration.selfReward)
        if let problem = Self.validate(submit) {
            reject(ClusterError(.invalidArgument, problem, jobID: id))
            return
        }
        guard submit.image.count <= configuration.maxImageBytes else {
            reject(
                ClusterError(
                    .imageTooLarge,
                    "the image is \(submit.image.count) bytes, over this coordinator's limit of \(configuration.maxImageBytes) (--max-image-bytes)",
                    jobID: id))
            return
        }
        enum Decision {
            case answer([Stagebeam_V1_Envelope.OneOf_Body])
            case refuse(ClusterError)
            case overloaded(ClusterError)
            case journal
        }
        let decision: Decision = table.withLock { table in
            if var job = table.jobs[id] {
                // A resubmission (a client asking again, perhaps after a coordinator restart).
                guard Job.fingerprint(job.submit) == Job.fingerprint(submit) else {
                    return .refuse(
                        ClusterError(
                            .invalidArgument, "job id '\(id)' already names a different job (question or options differ)", jobID: id))
                }
                logger.debug("job resubmitted", metadata: ["job_id": "\(id)", "finished": .stringConvertible(job.result != nil)])
                defer { table.jobs[id] = job }
                if let result = job.result {
                    return .answer([
                        .jobAccepted(Self.accepted(id, position: 0, known: true)), .jobResult(Job.result(result, for: subscriber))
                    ])
                }
                job.subscribe(peer, subscriber)
                table.clientsHeard[peer] = now
                guard job.journaled else {
                    // Told once the acceptance is durable, with the first submitter.
                    job.awaitingAcceptance.append(peer)
                    return .answer([])
                }
                return .answer([.jobAccepted(Self.accepted(id, position: Self.queuePosition(of: id, in: table), known: true))])
            }
            if table.unfinished.count >= configuration.maxQueuedJobs {
                return .overloaded(
                    ClusterError(
                        .overloaded,
                        "the coordinator holds \(table.unfinished.count) unfinished jobs, its limit (--max-queued-jobs "
                            + "\(configuration.maxQueuedJobs)); submit again later", jobID: id))
            }
            if table.imageBytes + submit.image.count > configuration.maxQueuedImageBytes {
                return .overloaded(
                    ClusterError(
                        .overloaded,
                        "the images of unfinished jobs would take \(table.imageBytes + submit.image.count) bytes, over the limit of "
                            + "\(configuration.maxQueuedImageBytes) (--max-queued-image-bytes); submit again later", jobID: id))
            }
            var job = Job(submit: submit, now: now)
            job.subscribe(peer, subscriber)
            job.owner = job.owner ?? .connection(peer)
            table.clientsHeard[peer] = now
            job.awaitingAcceptance = [peer]
            table.jobs[id] = job
            table.order.append(id)
            table.unfinished.insert(id)
            table.imageBytes += submit.image.count
            return .journal
        }
        switch decision {
        case .answer(let answers):
            for answer in answers { reply(answer) }
        case .refuse(let error):
            reject(error)
        case .overloaded(let error):
            // Expected under load, and possibly thousands a second: counted, not logged one by one.
            metrics.inc(CoordinatorMetrics.jobsRefused, [("reason", "overloaded")])
            reply(.error(error.wire))
        case .journal:
            do {
                try journal.accepted(id, submit: submit) { [weak self] error in self?.acceptanceJournaled(id, error: error) }
            } catch {
                acceptanceJournaled(id, error: error)
            }
        }
    }

    /// The job's acceptance is in the journal (or could not be written): its submitters hear of it,
    /// and it joins the queue. Runs on the journal's writer thread.
    private func acceptanceJournaled(_ id: String, error: (any Error)?) {
        let (peers, answer, ending): ([([UInt8], UInt32)], Stagebeam_V1_Envelope.OneOf_Body?, ClusterError?) = table.withLock { table in
            guard var job = table.jobs[id] else { return ([], nil, nil) }
            let peers = job.awaitingAcceptance.map { ($0, job.subscribers[$0]?.version ?? EnvelopeCodec.protocolVersion) }
            job.awaitingAcceptance = []
            if let error {
                table.jobs[id] = nil
                table.order.removeAll { $0 == id }
                table.unfinished.remove(id)
                table.imageBytes -= job.submit.image.count
                return (peers, .error(ClusterError(.internal, "cannot journal job '\(id)': \(error)", jobID: id).wire), nil)
            }
            job.journaled = true
            table.jobs[id] = job
            // Cancelled (or past its deadline) while being journaled: it ends without running.
            if let ending = job.ending { return (peers, .jobAccepted(Self.accepted(id, position: 0, known: false)), ending) }
            table.queued.append(id)
            let position = Self.queuePosition(of: id, in: table)
            let config = SearchConfig(submit: job.submit)
            logger.info(
                "job accepted",
                metadata: [
                    "job_id": "\(id)", "method": "\(config.method.rawValue)",
                    "beam": .stringConvertible(config.method.usesScorer ? config.candidates : config.beam),
                    "image": .stringConvertible(!job.submit.image.isEmpty), "queue_position": .stringConvertible(position)
                ])
            return (peers, .jobAccepted(Self.accepted(id, position: position, known: false)), nil)
        }
        guard let answer else { return }
        if error == nil { metrics.inc(CoordinatorMetrics.jobsAccepted) }
        for (peer, version) in peers { reply(peer, answer, version: version) }
        if let ending { finish(id, .failure(ending), usage: nil) }
        startQueuedJobs()
    }

    private static func accepted(_ id: String, position: UInt32, known: Bool) -> Stagebeam_V1_JobAccepted {
        var accepted = Stagebeam_V1_JobAccepted()
        accepted.jobID = id
        accepted.queuePosition = position
        accepted.alreadyKnown = known
        return accepted
    }

    /// What is wrong with a submitted job, or nil.
    static func validate(_ submit: Stagebeam_V1_SubmitJob) -> String? {
        if submit.jobID.utf8.count > 200 || submit.jobID.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "job id must be at most 200 bytes without control characters"
        }
        if submit.question.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return "the question is empty" }
        do {
            _ = try SearchConfig(submit: submit).validated()
            if !submit.judgeTemplatesJson.isEmpty {
                _ = try JudgeTemplates(json: submit.judgeTemplatesJson, source: "the job's judge templates")
            }
            if !submit.rewardTemplatesJson.isEmpty {
                _ = try RewardTemplates(json: submit.rewardTemplatesJson, source: "the job's reward templates")
            }
        } catch {
            return "\(error)"
        }
        return nil
    }

    /// Jobs ahead of `id` in the queue (0 when it runs, or is not queued).
    private static func queuePosition(of id: String, in table: Table) -> UInt32 {
        UInt32(table.queued.firstIndex(of: id) ?? 0)
    }

    /// Starts queued jobs, oldest first, while fewer than `maxRunningJobs` run.
    private func startQueuedJobs() {
        let starting: [Job] = table.withLock { table in
            let free = max(configuration.maxRunningJobs - table.running.count, 0)
            let ids = table.queued.prefix(free)
            table.queued.removeFirst(ids.count)
            let now = ContinuousClock.now
            return ids.compactMap { id in
                table.jobs[id]?.state = .running
                table.jobs[id]?.started = now
                table.running.insert(id)
                return table.jobs[id]
            }
        }
        for job in starting {
            let submit = job.submit
            // N (M for the scored methods) of every step: the search's own validation of the job (which
            // `accept` already passed).
            let config = try? SearchConfig(submit: submit).validated()
            let beam = config.map { $0.method.usesScorer ? $0.candidates : $0.beam } ?? 0
            // Thresholds calibrated on one scorer hold for that scorer only.
            let calibratedScorer = config?.rewardMean == nil ? config?.rewardCalibration?.scorer : nil
            let context = JobContext(
                id: job.id, image: job.image, beam: beam, seed: config?.seed ?? 0, candidateText: job.candidateText,
                stepsBySentence: config?.method == .sentence)
            context.candidateText.attach { [weak self] event in self?.publishText(event, of: context.id) }
            let steps = JobSteps(jobID: job.id, journal: journal, recorded: job.journaledSteps, logger: logger)
            Task.detached { [self] in
                let outcome: Result<SearchResult, ClusterError>
                do {
                    let templates =
                        submit.judgeTemplatesJson.isEmpty
                        ? JudgeTemplates.builtIn
                        : try JudgeTemplates(json: submit.judgeTemplatesJson, source: "job \(context.id)'s judge templates")
                    let rewardTemplates =
                        submit.rewardTemplatesJson.isEmpty
                        ? RewardTemplates.builtIn
                        : try RewardTemplates(json: submit.rewardTemplatesJson, source: "job \(context.id)'s reward templates")
                    let search = try StageBeamSearch(
                        generator: RemoteGenerator(dispatcher: dispatcher, job: context, steps: steps),
                        judge: RemoteJudge(dispatcher: dispatcher, job: context, steps: steps),
                        templates: templates,
                        scorer: RemoteScorer(dispatcher: dispatcher, job: context, steps: steps, scorer: calibratedScorer),
                        rewardTemplates: rewardTemplates,
                        config: SearchConfig(submit: submit))
                    outcome = .success(
                        try await search.run(question: submit.question, imageRef: context.image?.sha256) { event in
                            self.publish(event, of: context)
                        })
                } catch let error as ClusterError {
                    outcome = .failure(error)
                } catch let error as SearchError {
                    outcome = .failure(ClusterError(.invalidArgument, "\(error)"))
                } catch {
                    outcome = .failure(ClusterError(.internal, "\(error)"))
                }
                if steps.reused > 0 {
                    logger.info(
                        "answers reused from the journal",
                        metadata: ["job_id": "\(context.id)", "answers": .stringConvertible(steps.reused)])
                }
                finish(context.id, outcome, usage: context.usage, rewardModel: context.rewardModel.identity)
            }
        }
    }

    private func publish(_ event: SearchEvent, of context: JobContext) {
        let id = context.id
        switch event {
        case .stageStarted(let stage):
            context.stage.current = stage.wire
            if !context.stepsBySentence { context.stage.step = stage.index }
        case .winner(_, let unit, _):
            context.stage.step = unit + 1
        default: break
        }
        logProgress(event, of: id)
        let (message, peers): (Stagebeam_V1_JobEvent, [([UInt8], UInt32)]) = table.withLock { table in
            guard var job = table.jobs[id] else { return (Stagebeam_V1_JobEvent(), []) }
            switch event {
            case .stageStarted(let stage):
                job.stage = stage.wire
                job.candidateTexts = [:]
            case .candidatesReady(_, let unit, let candidates):
                // A retrace adds candidates to a unit that already has some.
                for candidate in candidates { job.candidateTexts[unit, default: [:]][candidate.index] = candidate.text }
            default: break
            }
            table.jobs[id] = job
            let texts: [Int: String]
            if case .winner(_, let unit, _) = event { texts = job.candidateTexts[unit] ?? [:] } else { texts = [:] }
            let message = Stagebeam_V1_JobEvent(jobID: id, event: event, texts: texts, beam: context.beam)
            return (message, job.subscribers.filter(\.value.wantsEvents).map { ($0.key, $0.value.version) })
        }
        for (peer, version) in peers { reply(peer, .jobEvent(message), version: version) }
    }

    /// A piece of a candidate's text, to the clients that asked for it (version 2 and later).
    private func publishText(_ event: Stagebeam_V1_JobEvent, of id: String) {
        let peers: [([UInt8], UInt32)] = table.withLock { table in
            guard let job = table.jobs[id], job.result == nil else { return [] }
            return job.subscribers.filter { $0.value.wantsEvents && $0.value.wantsText && $0.value.version >= 2 }.map {
                ($0.key, $0.value.version)
            }
        }
        for (peer, version) in peers { reply(peer, .jobEvent(event), version: version) }
    }

    /// A job's search, step by step: stages and candidates at debug, every match at trace.
    private func logProgress(_ event: SearchEvent, of id: String) {
        switch event {
        case .stageStarted(let stage):
            logger.debug("stage started", metadata: ["job_id": "\(id)", "stage": "\(stage.rawValue)"])
        case .candidatesReady(let stage, let unit, let candidates):
            logger.debug(
                "candidates gathered",
                metadata: [
                    "job_id": "\(id)", "stage": "\(stage.rawValue)", "unit": .stringConvertible(unit),
                    "n": .stringConvertible(candidates.count),
                    "tokens": .stringConvertible(candidates.map(\.tokens).reduce(0, +)),
                    "workers": "\(Set(candidates.compactMap(\.worker)).sorted().joined(separator: ","))"
                ])
        case .verdict(let topic, let unit, let match):
            logger.trace(
                "match decided",
                metadata: [
                    "job_id": "\(id)", "stage": "\(topic.rawValue)", "unit": .stringConvertible(unit),
                    "round": .stringConvertible(match.round),
                    "a": .stringConvertible(match.a), "b": .stringConvertible(match.b), "winner": .stringConvertible(match.winner)
                ])
        case .winner(let topic, let unit, let candidate):
            logger.debug(
                "winner chosen",
                metadata: [
                    "job_id": "\(id)", "stage": "\(topic.rawValue)", "unit": .stringConvertible(unit),
                    "candidate": .stringConvertible(candidate)
                ])
        case .scored(let stage, let unit, let candidates, let scores):
            logger.debug(
                "candidates scored",
                metadata: [
                    "job_id": "\(id)", "stage": "\(stage.rawValue)", "unit": .stringConvertible(unit),
                    "n": .stringConvertible(candidates.count), "best": .stringConvertible(scores.max() ?? -.infinity)
                ])
        case .survivors(let stage, _, let candidates):
            logger.debug(
                "survivors kept", metadata: ["job_id": "\(id)", "stage": "\(stage.rawValue)", "candidates": "\(candidates)"])
        case .retraced(let retrace):
            logger.debug(
                "stage retraced",
                metadata: [
                    "job_id": "\(id)", "stage": "\(retrace.stage.rawValue)", "attempt": .stringConvertible(retrace.attempt),
                    "threshold": .stringConvertible(retrace.threshold), "best_before": .stringConvertible(retrace.bestBefore),
                    "best_after": .stringConvertible(retrace.bestAfter)
                ])
        }
    }

    /// `usage`: the prompt tokens of the job's requests (nil: it never ran); `rewardModel`: the
    /// reward model its scores came from (the scored methods).
    private func finish(_ id: String, _ outcome: Result<SearchResult, ClusterError>, usage: JobUsage?, rewardModel: String? = nil) {
        let redispatched = dispatcher.redispatched(job: id)
        let caveats = dispatcher.determinismCaveats(job: id)
        let result: Stagebeam_V1_JobResult? = table.withLock { table in
            guard var job = table.jobs[id], !job.finishing else { return nil }
            job.finishing = true
            table.jobs[id] = job
            // A job ended early (cancelled, deadline) reports why, not how its search stopped.
            let outcome = job.ending.map { .failure($0) } ?? outcome
            let now = ContinuousClock.now
            let queueMs = milliseconds((job.started ?? now) - job.accepted)
            let totalMs = milliseconds(now - job.accepted)
            var result: Stagebeam_V1_JobResult
            switch outcome {
            case .success(let search):
                do {
                    result = try Stagebeam_V1_JobResult(
                        jobID: id, search: search, redispatched: redispatched, queueMs: queueMs, totalMs: totalMs)
                } catch {
                    result = Stagebeam_V1_JobResult(
                        jobID: id, failure: ClusterError(.internal, "cannot encode the search record: \(error)"),
                        redispatched: redispatched, queueMs: queueMs, totalMs: totalMs)
                }
            case .failure(let error):
                result = Stagebeam_V1_JobResult(jobID: id, failure: error, redispatched: redispatched, queueMs: queueMs, totalMs: totalMs)
            }
            if let usage = usage?.current {
                result.counts.candidatePromptTokens = usage.promptTokens
                result.counts.candidateReusedPrefixTokens = usage.reusedPrefixTokens
                result.counts.judgeGeneratedTokens = usage.judgeGeneratedTokens
            }
            // What the job ran with, without the bulky parts the client already has.
            result.settings = job.submit
            result.settings.question = ""
            result.settings.image = Data()
            result.settings.judgeTemplatesJson = Data()
            result.settings.rewardTemplatesJson = Data()
            result.determinismCaveats = caveats
            if let rewardModel { result.rewardModelHash = rewardModel }
            return result
        }
        guard let result else { return }
        // The client hears of the result once it is durable (a crash before then reruns the job).
        do {
            try journal.finished(id, result: result) { [weak self] error in self?.resultJournaled(id, result, error: error) }
        } catch {
            resultJournaled(id, result, error: error)
        }
    }

    /// Records the job's result and delivers it. Runs on the journal's writer thread.
    private func resultJournaled(_ id: String, _ result: Stagebeam_V1_JobResult, error: (any Error)?) {
        if let error {
            logger.error("cannot journal the job's result", metadata: ["job_id": "\(id)", "error": "\(error)"])
        }
        let deliveries: [([UInt8], UInt32, Stagebeam_V1_JobResult)] = table.withLock { table in
            guard var job = table.jobs[id] else { return [] }
            job.result = result
            job.state = Job.State(finished: result.status)
            let deliveries = job.subscribers.map { ($0.key, $0.value.version, Job.result(result, for: $0.value)) }
            let former = job.subscribers.keys
            job.subscribers = [:]
            table.jobs[id] = job
            table.running.remove(id)
            if table.unfinished.remove(id) != nil { table.imageBytes -= job.submit.image.count }
            // Clients that wait for no other job are no longer watched.
            for peer in former where !table.unfinished.contains(where: { table.jobs[$0]?.subscribers[peer] != nil }) {
                table.clientsHeard[peer] = nil
            }
            CoordinatorMetrics.finished(result, on: metrics)
            var metadata: Logger.Metadata = [
                "job_id": "\(id)", "status": "\(job.state.rawValue)", "seconds": .stringConvertible(result.totalMs.rounded() / 1000),
                "queue_seconds": .stringConvertible(result.queueMs.rounded() / 1000),
                "redispatched": .stringConvertible(result.counts.redispatchedRequests)
            ]
            if result.hasError { metadata.merge(ClusterError(result.error).logMetadata) { old, _ in old } }
            // A cancelled job is what a client asked for (or left behind), not a failure.
            logger.log(level: result.status == .failed ? .warning : .info, "job finished", metadata: metadata)
            return deliveries
        }
        for (peer, version, result) in deliveries { reply(peer, .jobResult(result), version: version) }
        dispatcher.forget(job: id)
        startQueuedJobs()
    }

    // MARK: Retention

    /// Compaction runs a tenth of the retention apart, at least a second and at most an hour.
    static func compactionInterval(_ retain: Duration) -> Duration {
        min(max(retain / 10, .seconds(1)), .seconds(3600))
    }

    private func startCompaction(every interval: Duration) {
        let task = Task.detached { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard let self, !Task.isCancelled else { return }
                self.compactJournal()
            }
        }
        compaction.withLock { $0 = task }
    }

    /// Drops the jobs the journal no longer holds from the table too.
    private func compactJournal() {
        do {
            let dropped = try journal.compact()
            guard !dropped.isEmpty else { return }
            table.withLock { table in
                for id in dropped where table.jobs[id]?.isFinished == true { table.jobs[id] = nil }
                table.order.removeAll { table.jobs[$0] == nil }
            }
            logger.info("journal compacted", metadata: ["jobs_dropped": .stringConvertible(dropped.count)])
        } catch {
            logger.error("cannot compact the journal", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Status

    /// Jobs by state, and running jobs by stage (for metrics).
    func jobCounts() -> (states: [Job.State: Int], stages: [Stagebeam_V1_Stage: Int]) {
        table.withLock { table in
            var states: [Job.State: Int] = [:]
            var stages: [Stagebeam_V1_Stage: Int] = [:]
            for job in table.jobs.values {
                states[job.state, default: 0] += 1
                if job.state == .running { stages[job.stage, default: 0] += 1 }
            }
            return (states, stages)
        }
    }

    private func status(now: ContinuousClock.Instant) -> Stagebeam_V1_StatusReply {
        let snapshot = dispatcher.snapshot(now: now)
        var reply = Stagebeam_V1_StatusReply()
        reply.protocolVersion = EnvelopeCodec.protocolVersion
        reply.workers = snapshot.workers
        reply.utilisation = snapshot.workers.isEmpty ? 0 : snapshot.workers.map(\.utilisation).reduce(0, +) / Double(snapshot.workers.count)
        reply.redispatchedRequests = snapshot.redispatched
        reply.pendingRequests = UInt32(snapshot.pendingRequests)
        let (counts, shown) = table.withLock { table in
            let all = table.order.compactMap { table.jobs[$0] }
            let counts = (
                queued: all.filter { $0.state == .queued }.count, running: all.filter { $0.state == .running }.count,
                finished: all.filter(\.isFinished).count
            )
            return (counts, all.filter { !$0.isFinished } + all.filter(\.isFinished).suffix(Self.finishedJobsShown))
        }
        reply.queueDepth = UInt32(counts.queued)
        reply.runningJobs = UInt32(counts.running)
        reply.finishedJobs = UInt32(counts.finished)
        reply.jobs = shown.map(jobInfo)
        return reply
    }

    private func jobInfo(_ job: Job) -> Stagebeam_V1_JobInfo {
        var info = Stagebeam_V1_JobInfo()
        info.jobID = job.id
        info.state = job.state.rawValue
        info.stage = job.stage
        info.redispatchedRequests = job.result?.counts.redispatchedRequests ?? UInt32(dispatcher.redispatched(job: job.id))
        if let result = job.result, result.hasError { info.error = ClusterError(result.error).description }
        return info
    }

    static let finishedJobsShown = 20

    static func peerName(_ routingID: [UInt8]) -> String {
        if let text = String(validating: routingID, as: UTF8.self), text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7f })
        {
            return text
        }
        return ContentHash.hex(routingID)
    }
}

/// The coordinator, for the socket loop's handlers: the loop is made before the coordinator is
/// whole, and must not keep it alive.
private final class CoordinatorReference: Sendable {
    private struct Weak { weak var value: Coordinator? }
    private let reference = Mutex(Weak())

    var coordinator: Coordinator? {
        get { reference.withLock { $0.value } }
        set { reference.withLock { $0.value = newValue } }
    }
}

/// Sends through the socket loop once it exists (the dispatcher is made before the loop).
private final class Outbox: Sendable {
    private let loop = Mutex<SocketLoop?>(nil)

    func attach(_ socketLoop: SocketLoop) { loop.withLock { $0 = socketLoop } }

    func send(_ frames: [[UInt8]], urgent: Bool = false) {
        // Fails only while closing, when nothing more needs to go out.
        try? loop.withLock { $0 }?.send(frames, urgent: urgent)
    }
}
