import Foundation
import Logging
import Search
import Transport
import Wire

/// The cluster's coordinator: a ROUTER socket that registers workers, accepts jobs from clients,
/// runs each job's search with remote generator and judge (see `Dispatcher`), streams progress to
/// the clients that submitted it, and journals every job accepted and finished.
///
/// Bad input (undecodable frames, a wrong protocol version, unexpected messages, invalid jobs) gets a
/// typed `Error` reply and a log line; the coordinator keeps serving everyone else. Log lines about a
/// job carry its `job_id`, those about a worker its `worker_id`.
public final class Coordinator: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Where to listen, e.g. `tcp://0.0.0.0:5555` (`tcp://127.0.0.1:*` picks a free port).
        public var endpoint: String
        public var journal: URL
        /// Workers are dead after `missedLimit` intervals without a message.
        public var heartbeat: HeartbeatPolicy
        /// How long a request may be in flight before it is sent to another worker.
        public var requestTimeout: Duration
        /// How long work may wait while no worker of its role is connected before its job fails.
        public var noWorkerWait: Duration
        /// Jobs searched at once; later ones wait in the queue.
        public var maxRunningJobs: Int
        public var maxFrameBytes: Int
        /// A submitted image over this many bytes is refused with `image_too_large`.
        public var maxImageBytes: Int
        /// CURVE: this coordinator's secret key and the public keys of the workers and clients it
        /// accepts (nil: plain TCP, anyone may connect).
        public var curve: (secretKey: String, authorizedKeys: Set<String>)?
        /// The model identity (`ModelIdentity`) every worker must serve, pinned by the operator; nil:
        /// each role's first registered worker decides (see `Dispatcher`).
        public var pinnedModel: String?
        /// Refused frames are logged once per peer per this interval, with a count of the others.
        public var refusalLogInterval: Duration

        public init(
            endpoint: String, journal: URL, heartbeat: HeartbeatPolicy = HeartbeatPolicy(interval: .milliseconds(500)),
            requestTimeout: Duration = .seconds(60), noWorkerWait: Duration = .seconds(60), maxRunningJobs: Int = 8,
            maxFrameBytes: Int = EnvelopeCodec.defaultMaxFrameBytes, maxImageBytes: Int = 32 << 20,
            curve: (secretKey: String, authorizedKeys: Set<String>)? = nil, pinnedModel: String? = nil,
            refusalLogInterval: Duration = .seconds(10)
        ) {
            self.curve = curve
            self.pinnedModel = pinnedModel
            self.refusalLogInterval = refusalLogInterval
            self.endpoint = endpoint
            self.journal = journal
            self.heartbeat = heartbeat
            self.requestTimeout = requestTimeout
            self.noWorkerWait = noWorkerWait
            self.maxRunningJobs = maxRunningJobs
            self.maxFrameBytes = maxFrameBytes
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
    private var loop: SocketLoop!

    /// What `--metrics-port` serves (see `CoordinatorMetrics`).
    public let metrics = Metrics()

    private let authenticator: ZAPAuthenticator?
    private let lock = NSLock()
    private var jobs: [String: Job] = [:]
    /// Job ids in the order accepted (queued jobs start in this order).
    private var order: [String] = []
    /// Refusals logged per peer (guarded by `lock`).
    private var refusalLog: RepeatLimiter<[UInt8]>

    public init(context: ZMQContext, configuration: Configuration, logger: Logger = Logger(label: "coordinator")) throws {
        self.configuration = configuration
        // The authenticator must answer before the first connection arrives.
        authenticator = try configuration.curve.map {
            try ZAPAuthenticator(
                context: context, allowed: $0.authorizedKeys, logger: logger, logInterval: configuration.refusalLogInterval)
        }
        self.codec = EnvelopeCodec(maxFrameBytes: configuration.maxFrameBytes)
        self.logger = logger
        refusalLog = RepeatLimiter(interval: configuration.refusalLogInterval)
        let (journal, entries) = try Journal.open(configuration.journal) { logger.warning("\($0)") }
        self.journal = journal
        let outbox = self.outbox
        dispatcher = Dispatcher(
            settings: .init(
                heartbeat: configuration.heartbeat, requestTimeout: configuration.requestTimeout,
                noWorkerWait: configuration.noWorkerWait, pinnedModel: configuration.pinnedModel),
            codec: codec, send: { outbox.send($0) }, logger: logger)
        dispatcher.metrics = metrics
        if let pinned = configuration.pinnedModel {
            logger.info("model pinned", metadata: ["model_hash": "\(pinned)"])
        }
        let now = ContinuousClock.now
        for (id, entry) in entries {
            jobs[id] = Job(submit: entry.submit, result: entry.result, journaledSteps: entry.result == nil ? entry.steps : [:], now: now)
            order.append(id)
        }
        let unfinished = jobs.values.filter { !$0.isFinished }.count
        if !entries.isEmpty {
            logger.info(
                "journal replayed",
                metadata: [
                    "path": "\(configuration.journal.path)", "jobs": .stringConvertible(entries.count),
                    "unfinished": .stringConvertible(unfinished)
                ])
        }
        let loop = try SocketLoop(
            context: context,
            // ZeroMQ drops a peer that sends more than this without a word; twice the codec's limit lets
            // the codec answer frames between the two with a typed `message_too_large`.
            configuration: .init(
                kind: .router, bind: [configuration.endpoint], maxMessageBytes: 2 * Int64(configuration.maxFrameBytes),
                tick: configuration.heartbeat.interval / 2, name: "coordinator",
                curve: configuration.curve.map { .server(secretKey: $0.secretKey) }),
            handlers: .init(
                onMessage: { [unowned self] frames in handle(frames) },
                onTick: { [unowned self] _, now in
                    dispatcher.tick(now: now)
                    reportHeldRefusals(now: now)
                },
                onSendFailure: { frames, error in
                    // A client that went away: its job goes on, and its result stays for a resubmission.
                    logger.notice("message undeliverable", metadata: ["peer": "\(Self.peerName(frames[0]))", "error": "\(error)"])
                },
                onError: { error, willStop in
                    logger.log(
                        level: willStop ? .critical : .error, "socket error",
                        metadata: ["error": "\(error)", "stopping": .stringConvertible(willStop)])
                }))
        self.loop = loop
        outbox.loop = loop
        CoordinatorMetrics.register(on: metrics, coordinator: self, dispatcher: dispatcher)
        startQueuedJobs()
    }

    public func close() {
        loop.close()
        authenticator?.close()
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
        let body: Stagebeam_V1_Envelope.OneOf_Body
        do {
            body = try codec.decode(frames[1])
        } catch {
            reject(peer, ClusterError(error.code, error.message))
            return
        }
        switch body {
        case .ready(let ready):
            if let refusal = dispatcher.ready(from: peer, ready, now: now) { reject(peer, refusal) }
        case .heartbeat:
            var beat = Stagebeam_V1_Heartbeat()
            beat.known = isWorker || isWaitingClient(peer)
            reply(peer, .heartbeat(beat))
        case .disconnect(let goodbye):
            dispatcher.disconnect(from: peer, reason: goodbye.reason, now: now)
        case .generateResult(let result):
            dispatcher.generateResult(from: peer, result, now: now)
        case .judgeResult(let result):
            dispatcher.judgeResult(from: peer, result, now: now)
        case .error(let error):
            dispatcher.workerError(from: peer, error, now: now)
        case .submitJob(let submit):
            accept(submit, from: peer, now: now)
        case .statusRequest:
            reply(peer, .statusReply(status(now: now)))
        default:
            reject(peer, ClusterError(.unexpectedMessage, "a coordinator does not accept \(EnvelopeCodec.name(of: body)) messages"))
        }
    }

    private func reply(_ peer: [UInt8], _ body: Stagebeam_V1_Envelope.OneOf_Body) {
        do {
            outbox.send([peer, try codec.encode(body)])
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
    private func reject(_ peer: [UInt8], _ error: ClusterError) {
        let (log, held) = lock.withLock { refusalLog.admit(peer, now: .now) }
        if log {
            var metadata = error.logMetadata.merging(["peer": "\(Self.peerName(peer))"]) { $1 }
            if held > 0 { metadata["repeats"] = .stringConvertible(held) }
            logger.warning("message refused", metadata: metadata)
        }
        reply(peer, .error(error.wire))
    }

    /// Refusals held back from peers that have since gone quiet: one line each with the count.
    private func reportHeldRefusals(now: ContinuousClock.Instant) {
        let held = lock.withLock { refusalLog.expired(now: now) }
        for (peer, count) in held {
            logger.warning(
                "messages refused",
                metadata: [
                    "peer": "\(Self.peerName(peer))", "repeats": .stringConvertible(count),
                    "interval_s": .stringConvertible(milliseconds(configuration.refusalLogInterval) / 1000)
                ])
        }
    }

    // MARK: Jobs

    /// Whether `peer` subscribes to a job this coordinator holds. Finished jobs count: a heartbeat
    /// answered between a job's finishing and its result reaching the client must not tell the
    /// client its job is unknown (it would resubmit a job that is done).
    private func isWaitingClient(_ peer: [UInt8]) -> Bool {
        lock.withLock { jobs.values.contains { $0.subscribers[peer] != nil } }
    }

    private func accept(_ submit: Stagebeam_V1_SubmitJob, from peer: [UInt8], now: ContinuousClock.Instant) {
        var submit = submit
        if submit.jobID.isEmpty { submit.jobID = UUID().uuidString.lowercased() }
        let id = submit.jobID
        let subscriber = Job.Subscriber(wantsEvents: submit.streamEvents, wantsRecord: submit.recordSearch)
        // The search fields the job leaves unset take the cluster model's recommendations, and the
        // job is journaled filled: its settings never change after it is accepted.
        let recommendations: ModelRecommendations
        do {
            let announced = dispatcher.announcedRecommendations() ?? Data()
            recommendations = announced.isEmpty ? ModelRecommendations() : try ModelRecommendations(json: announced)
        } catch {
            reject(peer, ClusterError(.internal, "the workers' recommended settings are unreadable: \(error)", jobID: id))
            return
        }
        if recommendations.requiresImage, submit.image.isEmpty {
            reject(
                peer, ClusterError(.invalidArgument, "this cluster's model answers questions about an image only: send an image", jobID: id)
            )
            return
        }
        submit = recommendations.filled(submit)
        if let problem = Self.validate(submit) {
            reject(peer, ClusterError(.invalidArgument, problem, jobID: id))
            return
        }
        guard submit.image.count <= configuration.maxImageBytes else {
            reject(
                peer,
                ClusterError(
                    .imageTooLarge,
                    "the image is \(submit.image.count) bytes, over this coordinator's limit of \(configuration.maxImageBytes) (--max-image-bytes)",
                    jobID: id))
            return
        }
        var answers: [Stagebeam_V1_Envelope.OneOf_Body] = []
        var refusal: ClusterError?
        lock.withLock {
            var accepted = Stagebeam_V1_JobAccepted()
            accepted.jobID = id
            if let job = jobs[id] {
                // A resubmission (a client asking again, perhaps after a coordinator restart).
                guard Job.fingerprint(job.submit) == Job.fingerprint(submit) else {
                    refusal = ClusterError(
                        .invalidArgument, "job id '\(id)' already names a different job (question or options differ)", jobID: id)
                    return
                }
                accepted.alreadyKnown = true
                accepted.queuePosition = queuePosition(of: job)
                logger.debug("job resubmitted", metadata: ["job_id": "\(id)", "finished": .stringConvertible(job.result != nil)])
                answers.append(.jobAccepted(accepted))
                if let result = job.result {
                    answers.append(.jobResult(Job.result(result, for: subscriber)))
                } else {
                    job.subscribers[peer] = subscriber
                }
                return
            }
            do {
                try journal.accepted(id, submit: submit)
            } catch {
                refusal = ClusterError(.internal, "cannot journal job '\(id)': \(error)", jobID: id)
                return
            }
            let job = Job(submit: submit, now: now)
            metrics.inc(CoordinatorMetrics.jobsAccepted)
            job.subscribers[peer] = subscriber
            jobs[id] = job
            order.append(id)
            accepted.queuePosition = queuePosition(of: job)
            answers.append(.jobAccepted(accepted))
            let config = SearchConfig(submit: submit)
            logger.info(
                "job accepted",
                metadata: [
                    "job_id": "\(id)", "method": "\(config.method.rawValue)", "beam": .stringConvertible(config.beam),
                    "image": .stringConvertible(!submit.image.isEmpty), "queue_position": .stringConvertible(accepted.queuePosition)
                ])
        }
        if let refusal { reject(peer, refusal) }
        for answer in answers { reply(peer, answer) }
        startQueuedJobs()
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
        } catch {
            return "\(error)"
        }
        return nil
    }

    private func queuePosition(of job: Job) -> UInt32 {
        guard job.state == .queued else { return 0 }
        return UInt32(order.prefix { $0 != job.id }.filter { jobs[$0]?.state == .queued }.count)
    }

    /// Starts queued jobs, oldest first, while fewer than `maxRunningJobs` run.
    private func startQueuedJobs() {
        let starting: [Job] = lock.withLock {
            let running = jobs.values.filter { $0.state == .running }.count
            let queued = order.compactMap { jobs[$0] }.filter { $0.state == .queued }
            let now = ContinuousClock.now
            let start = Array(queued.prefix(max(configuration.maxRunningJobs - running, 0)))
            for job in start {
                job.state = .running
                job.started = now
            }
            return start
        }
        for job in starting {
            let submit = job.submit
            // N of every step: the search's own validation of the job (which `accept` already passed).
            let beam = (try? SearchConfig(submit: submit).validated().beam) ?? 0
            let context = JobContext(id: job.id, image: job.image, beam: beam)
            let steps = JobSteps(jobID: job.id, journal: journal, recorded: job.journaledSteps, logger: logger)
            Task.detached { [self] in
                let outcome: Result<SearchResult, ClusterError>
                do {
                    let templates =
                        submit.judgeTemplatesJson.isEmpty
                        ? JudgeTemplates.builtIn
                        : try JudgeTemplates(json: submit.judgeTemplatesJson, source: "job \(context.id)'s judge templates")
                    let search = try StageBeamSearch(
                        generator: RemoteGenerator(dispatcher: dispatcher, job: context, steps: steps),
                        judge: RemoteJudge(dispatcher: dispatcher, job: context, steps: steps),
                        templates: templates, config: SearchConfig(submit: submit))
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
                finish(context.id, outcome)
            }
        }
    }

    private func publish(_ event: SearchEvent, of context: JobContext) {
        let id = context.id
        if case .stageStarted(let stage) = event { context.stage.current = stage.wire }
        logProgress(event, of: id)
        let (message, peers): (Stagebeam_V1_JobEvent, [[UInt8]]) = lock.withLock {
            guard let job = jobs[id] else { return (Stagebeam_V1_JobEvent(), []) }
            switch event {
            case .stageStarted(let stage): job.stage = stage.wire
            case .candidatesReady(_, _, let candidates):
                job.candidateTexts = Dictionary(uniqueKeysWithValues: candidates.map { ($0.index, $0.text) })
            default: break
            }
            let message = Stagebeam_V1_JobEvent(jobID: id, event: event, texts: job.candidateTexts, beam: context.beam)
            return (message, job.subscribers.filter(\.value.wantsEvents).map(\.key))
        }
        for peer in peers { reply(peer, .jobEvent(message)) }
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
        }
    }

    private func finish(_ id: String, _ outcome: Result<SearchResult, ClusterError>) {
        let redispatched = dispatcher.redispatched(job: id)
        let deliveries: [([UInt8], Stagebeam_V1_JobResult)] = lock.withLock {
            guard let job = jobs[id] else { return [] }
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
            result.settings = job.submit
            result.settings.question = ""
            result.settings.image = Data()
            result.settings.judgeTemplatesJson = Data()
            do {
                try journal.finished(id, result: result)
            } catch {
                logger.error("cannot journal the job's result", metadata: ["job_id": "\(id)", "error": "\(error)"])
            }
            job.result = result
            job.state = result.status == .succeeded ? .succeeded : .failed
            CoordinatorMetrics.finished(result, on: metrics)
            var metadata: Logger.Metadata = [
                "job_id": "\(id)", "status": "\(job.state.rawValue)", "seconds": .stringConvertible(totalMs.rounded() / 1000),
                "queue_seconds": .stringConvertible(queueMs.rounded() / 1000), "redispatched": .stringConvertible(redispatched)
            ]
            if result.hasError { metadata.merge(ClusterError(result.error).logMetadata) { old, _ in old } }
            logger.log(level: result.hasError ? .warning : .info, "job finished", metadata: metadata)
            let deliveries = job.subscribers.map { ($0.key, Job.result(result, for: $0.value)) }
            job.subscribers = [:]
            return deliveries
        }
        for (peer, result) in deliveries { reply(peer, .jobResult(result)) }
        startQueuedJobs()
    }

    // MARK: Status

    /// Jobs by state, and running jobs by stage (for metrics).
    func jobCounts() -> (states: [Job.State: Int], stages: [Stagebeam_V1_Stage: Int]) {
        lock.withLock {
            var states: [Job.State: Int] = [:]
            var stages: [Stagebeam_V1_Stage: Int] = [:]
            for job in jobs.values {
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
        lock.withLock {
            let all = order.compactMap { jobs[$0] }
            reply.queueDepth = UInt32(all.filter { $0.state == .queued }.count)
            reply.runningJobs = UInt32(all.filter { $0.state == .running }.count)
            reply.finishedJobs = UInt32(all.filter(\.isFinished).count)
            let shown = all.filter { !$0.isFinished } + all.filter(\.isFinished).suffix(Self.finishedJobsShown)
            reply.jobs = shown.map { job in
                var info = Stagebeam_V1_JobInfo()
                info.jobID = job.id
                info.state = job.state.rawValue
                info.stage = job.stage
                info.redispatchedRequests = job.result?.counts.redispatchedRequests ?? UInt32(dispatcher.redispatched(job: job.id))
                if let result = job.result, result.hasError { info.error = ClusterError(result.error).description }
                return info
            }
        }
        return reply
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

/// Sends through the socket loop once it exists (the dispatcher is made before the loop).
private final class Outbox: @unchecked Sendable {
    private let lock = NSLock()
    private var _loop: SocketLoop?

    var loop: SocketLoop? {
        get { lock.withLock { _loop } }
        set { lock.withLock { _loop = newValue } }
    }

    func send(_ frames: [[UInt8]]) {
        // Fails only while closing, when nothing more needs to go out.
        try? loop?.send(frames)
    }
}
