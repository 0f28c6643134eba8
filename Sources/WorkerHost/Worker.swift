import Cluster
import Foundation
import Generation
import Logging
import Synchronization
import Transport
import Wire

/// A worker process's connection to the coordinator: announces itself (Ready: roles, credits, model
/// hash), serves generate, judge and reward requests on its engine (and reward model) while the link
/// heartbeats from its own thread, and answers every failure with a typed `Error` instead of dying.
/// A reward-only worker with a reward model of its own has no engine: it never loads the policy model.
///
/// It refuses requests that would take it over its advertised credits (`overloaded`), so a
/// misbehaving coordinator cannot make it batch more than it said.
///
/// Every log line carries the `worker_id`; lines about work its `job_id` and `request_id`.
public final class Worker: Sendable {
    public struct Configuration: Sendable {
        public var endpoint: String
        /// Unique in the cluster; also the ZeroMQ routing id.
        public var workerID: String
        public var roles: [Stagebeam_V1_Role]
        /// Credits: the most sequences in flight at once.
        public var maxBatch: Int
        public var heartbeat: HeartbeatPolicy
        public var backoff: Backoff
        /// Images kept by content hash (the coordinator then sends only the hash).
        public var imageCacheCapacity: Int
        /// CURVE keys for a coordinator that requires them.
        public var curve: CurveRole?

        public init(
            endpoint: String, workerID: String, roles: [Stagebeam_V1_Role], maxBatch: Int,
            heartbeat: HeartbeatPolicy = HeartbeatPolicy(interval: .milliseconds(500)),
            backoff: Backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5)), imageCacheCapacity: Int = 16,
            curve: CurveRole? = nil
        ) {
            self.curve = curve
            self.endpoint = endpoint
            self.workerID = workerID
            self.roles = roles
            self.maxBatch = maxBatch
            self.heartbeat = heartbeat
            self.backoff = backoff
            self.imageCacheCapacity = imageCacheCapacity
        }
    }

    let configuration: Configuration
    /// What `--metrics-port` serves (see `WorkerMetrics`).
    public let metrics = Metrics()
    /// Serves the generate and judge roles on the policy model (nil: a reward-only worker with a
    /// reward model of its own).
    private let engine: (any WorkerBackend)?
    /// Serves the reward role (nil: the worker does not announce it).
    private let scorer: WorkerScorer?
    private let codec = EnvelopeCodec()
    private let logger: Logger
    private let link: DealerLink

    /// What the link's thread, the serving tasks and the callers share.
    private struct State {
        var inFlight: [String: Serving] = [:]
        var images: ImageCache
        var lastReady = ContinuousClock.now
        var beat: UInt64 = 0
        var stopped: ClusterError?
        var linkConnected = false
        /// The coordinator has answered at least once since this worker started.
        var everConnected = false
        /// It said goodbye: a heartbeat answered "unknown" after that must not register it again.
        var leaving = false
        /// The coordinator answered a heartbeat saying it knows this worker, since the link came up.
        var registered = false
        var onStop: CheckedContinuation<ClusterError, Never>?

        var sequencesInFlight: Int { inFlight.values.reduce(0) { $0 + $1.sequences } }
    }
    /// A request being served: the credits it holds, the handle that stops it (StopRequests) and
    /// the task serving it (cancelled too, which stops a server-backed worker's calls).
    private struct Serving {
        let sequences: Int
        let control: GenerationControl
        var task: Task<Void, Never>?
    }
    private let state: Mutex<State>

    /// `engine` serves the generate and judge roles and `scorer` the reward role: each is given
    /// exactly when `configuration.roles` names its roles.
    public init(
        context: ZMQContext, configuration: Configuration, engine: (any WorkerBackend)?, scorer: WorkerScorer? = nil,
        logger: Logger = Logger(label: "worker")
    ) throws {
        guard !configuration.roles.isEmpty else { throw ClusterError(.invalidArgument, "a worker needs at least one role") }
        guard configuration.roles.contains(.reward) == (scorer != nil) else {
            throw ClusterError(
                .invalidArgument, scorer == nil ? "the reward role needs a scorer" : "a scorer is given but the reward role is not served")
        }
        let policyRoles = configuration.roles.filter { $0 != .reward }
        guard policyRoles.isEmpty || engine != nil else {
            throw ClusterError(
                .invalidArgument, "the \(policyRoles.map(\.logName).joined(separator: " and ")) role needs the policy model (an engine)")
        }
        self.scorer = scorer
        // Credits bound the sequences of one engine batch: the policy engine's, else the reward model's.
        let maxSamples = engine?.maxSamples ?? scorer?.maxSamples ?? 0
        guard (1...max(maxSamples, 1)).contains(configuration.maxBatch) else {
            throw ClusterError(
                .invalidArgument, "max batch must be between 1 and the engine's \(maxSamples), got \(configuration.maxBatch)")
        }
        self.configuration = configuration
        self.engine = engine
        var tagged = logger
        tagged[metadataKey: "worker_id"] = "\(configuration.workerID)"
        self.logger = tagged
        let startedAt = ContinuousClock.now
        state = Mutex(State(images: ImageCache(capacity: configuration.imageCacheCapacity), lastReady: startedAt))
        // The link's handlers reach the worker through this box: the link is made before the worker
        // is whole, and must not keep it alive. Only the first greeting is asked for before the box
        // is filled (the link queues it at once), so it is built here: nothing is cached yet, and
        // `lastReady` says when. Beats, messages and state changes come a tick or a round trip later.
        let reference = WorkerReference()
        let firstReady = Self.readyFrames(configuration: configuration, engine: engine, scorer: scorer, codec: codec, cachedImages: [])
        link = try DealerLink(
            context: context,
            configuration: .init(
                endpoint: configuration.endpoint, routingID: Array(configuration.workerID.utf8),
                heartbeat: configuration.heartbeat, backoff: configuration.backoff,
                maxMessageBytes: Int64(codec.maxFrameBytes), name: "worker-link", curve: configuration.curve),
            greeting: { reference.worker?.readyFrames() ?? firstReady },
            heartbeat: { reference.worker?.heartbeatFrames() ?? [] },
            onMessage: { frames in reference.worker?.handle(frames) },
            onStateChange: { state in reference.worker?.linkChanged(to: state) })
        reference.worker = self
        WorkerMetrics.register(on: metrics, worker: self, engine: engine, scorer: scorer)
    }

    /// Whether the link to the coordinator is up (heartbeats answered): a readiness probe's answer.
    public var isConnected: Bool { state.withLock { $0.linkConnected && $0.stopped == nil } }

    /// Waits until the coordinator refuses this worker for good (e.g. a model mismatch).
    public func waitUntilRefused() async -> ClusterError {
        await withCheckedContinuation { continuation in
            state.withLock {
                if let stopped = $0.stopped { continuation.resume(returning: stopped) } else { $0.onStop = continuation }
            }
        }
    }

    /// Says goodbye (the coordinator re-dispatches this worker's work at once) and closes the link.
    public func close(reason: String = "shutting down") {
        state.withLock { $0.leaving = true }
        var goodbye = Stagebeam_V1_Disconnect()
        goodbye.reason = reason
        if let frame = try? codec.encode(.disconnect(goodbye)) { try? link.send([frame]) }
        // Give the link's thread a moment to put the goodbye on the wire.
        Thread.sleep(forTimeInterval: 0.05)
        link.close()
    }

    // MARK: Link thread

    private func readyFrames() -> [[UInt8]] {
        let cached = state.withLock {
            $0.lastReady = .now
            return $0.images.hashes
        }
        return Self.readyFrames(configuration: configuration, engine: engine, scorer: scorer, codec: codec, cachedImages: cached)
    }

    private static func readyFrames(
        configuration: Configuration, engine: (any WorkerBackend)?, scorer: WorkerScorer?, codec: EnvelopeCodec, cachedImages: [String]
    ) -> [[UInt8]] {
        var ready = Stagebeam_V1_Ready()
        ready.protocolVersion = EnvelopeCodec.protocolVersion
        ready.workerID = configuration.workerID
        ready.roles = configuration.roles
        ready.maxBatchSequences = UInt32(configuration.maxBatch)
        ready.imageCache.capacityImages = UInt32(configuration.imageCacheCapacity)
        ready.softwareVersion = "stagebeam (protocol \(EnvelopeCodec.protocolVersion))"
        ready.imageCache.cachedSha256 = cachedImages
        if let engine {
            ready.modelName = engine.modelName
            ready.modelHash = engine.modelHash
            ready.contextTokens = UInt32(clamping: engine.contextTokens)
            ready.recommendationsJson = engine.recommendationsJSON
            ready.backend = engine.backendDescription
            ready.determinismCaveat = engine.determinismCaveat
        } else if let scorer {
            // A reward-only worker loads the reward model alone: that is the model it serves.
            ready.modelName = scorer.modelName
            ready.modelHash = scorer.modelHash
            ready.contextTokens = UInt32(clamping: scorer.contextTokens)
        }
        if let scorer {
            ready.rewardModelHash = scorer.modelHash
            ready.rewardScorer = scorer.scorerName
            ready.rewardModelName = scorer.modelName
            ready.rewardModelKind = scorer.modelKind
        }
        return [(try? codec.encode(.ready(ready))) ?? []]
    }

    private func linkChanged(to link: DealerLink.State) {
        let answeredBefore = state.withLock { state in
            state.linkConnected = link == .connected
            if link != .connected { state.registered = false }
            if link == .connected { state.everConnected = true }
            return state.everConnected
        }
        let endpoint = configuration.endpoint
        switch link {
        case .connecting:
            logger.debug("connecting", metadata: ["coordinator": "\(endpoint)"])
        case .connected:
            logger.debug("link up", metadata: ["coordinator": "\(endpoint)"])
        case .reconnecting(let attempt, let delay) where !answeredBefore:
            // ZeroMQ drops a refused CURVE handshake without a word: say what silence from
            // the start can mean.
            logger.warning(
                "no answer from the coordinator, retrying",
                metadata: [
                    "coordinator": "\(endpoint)", "attempt": .stringConvertible(attempt),
                    "delay_s": .stringConvertible(milliseconds(delay).rounded() / 1000),
                    "hint": configuration.curve == nil
                        ? "is it running there? does it require CURVE keys (--curve-server-key, --curve-secret-key-file)?"
                        : "is it running there? is this worker's public key in its --authorized-keys, and --curve-server-key its public key?"
                ])
        case .reconnecting(let attempt, let delay):
            logger.warning(
                "coordinator silent, reconnecting",
                metadata: [
                    "coordinator": "\(endpoint)", "attempt": .stringConvertible(attempt),
                    "delay_s": .stringConvertible(milliseconds(delay).rounded() / 1000)
                ])
        }
    }

    /// Sequences in flight now, and images cached (for metrics).
    func load() -> (sequences: Int, images: Int) {
        state.withLock { ($0.sequencesInFlight, $0.images.hashes.count) }
    }

    private func heartbeatFrames() -> [[UInt8]] {
        var message = Stagebeam_V1_Heartbeat()
        let (beat, used, requests) = state.withLock { state in
            state.beat += 1
            return (state.beat, state.sequencesInFlight, state.inFlight.keys.sorted())
        }
        message.sequence = beat
        message.inFlightSequences = UInt32(used)
        message.creditsAvailable = UInt32(max(configuration.maxBatch - used, 0))
        message.inFlightRequestIds = requests
        return [(try? codec.encode(.heartbeat(message))) ?? []]
    }

    private func handle(_ frames: [[UInt8]]) {
        guard frames.count == 1 else {
            send(.error(ClusterError(.malformedFrame, "expected one envelope frame, got \(frames.count)").wire))
            return
        }
        let body: Stagebeam_V1_Envelope.OneOf_Body
        do {
            body = try codec.decode(frames[0])
        } catch {
            logger.warning("undecodable message from the coordinator", metadata: ["error": "\(error)"])
            send(.error(error.errorMessage()))
            return
        }
        switch body {
        case .generateRequest(let request):
            accept(
                request.requestID, jobID: request.jobID, role: .generate, stage: request.stage, sequences: Int(request.n),
                deadlineMs: request.deadlineMs, progressIntervalMs: request.progressIntervalMs,
                image: request.hasImage ? request.image : nil,
                check: { request.seeds.count == Int(request.n) ? nil : "n is \(request.n) but \(request.seeds.count) seeds were sent" }
            ) { [engine] image, deadline, control in
                // `accept` refuses generate requests when the worker does not serve the role.
                guard let engine else { throw ClusterError(.unexpectedMessage, "this worker loads no policy model") }
                return .generateResult(try await engine.generate(request, image: image, deadline: deadline, control: control))
            }
        case .judgeRequest(let request):
            accept(
                request.requestID, jobID: request.jobID, role: .judge, stage: request.stage, sequences: 1 + request.moreMatches.count,
                deadlineMs: request.deadlineMs,
                progressIntervalMs: 0, image: request.hasImage ? request.image : nil,
                check: {
                    request.moreMatches.contains { $0.prompt.isEmpty } ? "a match of more_matches carries no rendered prompt" : nil
                }
            ) { [engine] image, deadline, control in
                // A verdict is short: stopped before it starts, it never does; once started, it finishes.
                if control.isStopped { throw ClusterError(.cancelled, "request \(request.requestID) was stopped") }
                // `accept` refuses judge requests when the worker does not serve the role.
                guard let engine else { throw ClusterError(.unexpectedMessage, "this worker loads no policy model") }
                return .judgeResult(try await engine.judge(request, image: image, deadline: deadline))
            }
        case .stopRequests(let stop):
            let stopping = state.withLock { state in stop.requestIds.compactMap { state.inFlight[$0] } }
            for serving in stopping {
                serving.control.stop()
                serving.task?.cancel()
            }
            logger.info(
                "stopping requests",
                metadata: [
                    "job_id": "\(stop.jobID)", "requests": .stringConvertible(stopping.count),
                    "unknown_requests": .stringConvertible(stop.requestIds.count - stopping.count), "reason": "\(stop.reason)"
                ])
        case .rewardRequest(let request):
            accept(
                request.requestID, jobID: request.jobID, role: .reward, stage: request.stage, sequences: request.candidates.count,
                deadlineMs: request.deadlineMs, progressIntervalMs: 0, image: request.hasImage ? request.image : nil,
                check: { WorkerScorer.problem(in: request) }
            ) { [scorer] image, deadline, control in
                // `accept` refuses reward requests when the worker does not serve the role.
                guard let scorer else { throw ClusterError(.unexpectedMessage, "this worker serves no reward model") }
                // Stopped before its batch starts, it never does; once started, it finishes.
                return .rewardResult(try await scorer.score(request, image: image, deadline: deadline, control: control))
            }
        case .heartbeat(let beat):
            // A coordinator that does not know us (it restarted): announce ourselves again, at most
            // once per liveness period (answers to beats sent before the Ready also say "unknown").
            let (due, newlyKnown) = state.withLock { state in
                defer { state.registered = beat.known }
                return (
                    !state.leaving && ContinuousClock.now - state.lastReady > configuration.heartbeat.deadAfter,
                    beat.known && !state.registered
                )
            }
            if newlyKnown {
                logger.info(
                    "registered",
                    metadata: [
                        "coordinator": "\(configuration.endpoint)",
                        "roles": "\(configuration.roles.map(\.logName).joined(separator: ","))",
                        "max_batch": .stringConvertible(configuration.maxBatch),
                        "model": "\(engine?.modelName ?? scorer?.modelName ?? "")"
                    ].merging(scorer.map { ["reward_model": "\($0.description)"] } ?? [:]) { $1 })
            }
            if !beat.known && due {
                logger.notice(
                    "the coordinator does not know this worker (restarted?): sending Ready again",
                    metadata: ["coordinator": "\(configuration.endpoint)"])
                try? link.send(readyFrames())
            }
        case .error(let error):
            let problem = ClusterError(error)
            // Refusals of the worker itself (not of one request) are final: retrying cannot help.
            let final = error.requestID.isEmpty && (error.code == .modelMismatch || error.code == .invalidArgument)
            logger.log(
                level: final ? .error : .warning, final ? "refused by the coordinator" : "error from the coordinator",
                metadata: problem.logMetadata)
            if final { stop(problem) }
        default:
            send(.error(ClusterError(.unexpectedMessage, "a worker does not accept \(EnvelopeCodec.name(of: body)) messages").wire))
        }
    }

    /// Checks a request against roles, credits and images, then serves it off the link's thread.
    /// `progressIntervalMs`: how often to send the request's candidates' new text (0: never).
    private func accept(
        _ id: String, jobID: String, role: Stagebeam_V1_Role, stage: Stagebeam_V1_Stage, sequences: Int, deadlineMs: Double,
        progressIntervalMs: Double, image: Stagebeam_V1_ImageRef?,
        check: () -> String?,
        serve:
            @escaping @Sendable (PromptImage?, ContinuousClock.Instant?, GenerationControl) async throws -> Stagebeam_V1_Envelope.OneOf_Body
    ) {
        let received = ContinuousClock.now
        var logger = self.logger
        logger[metadataKey: "job_id"] = "\(jobID)"
        logger[metadataKey: "request_id"] = "\(id)"
        logger[metadataKey: "kind"] = "\(role.logName)"
        logger[metadataKey: "stage"] = "\(stage.logName)"
        // Work still waiting for the engine at its deadline is refused: the coordinator has already
        // sent it elsewhere.
        let deadline = deadlineMs > 0 ? received + .nanoseconds(Int64(deadlineMs * 1e6)) : nil
        let control = progressIntervalMs > 0 ? progressControl(id, jobID: jobID, intervalMs: progressIntervalMs) : GenerationControl()
        var promptImage: PromptImage?
        let refusal: ClusterError? = state.withLock { state in
            if !configuration.roles.contains(role) {
                return ClusterError(
                    .unexpectedMessage, "worker \(configuration.workerID) does not serve \(role.logName) requests")
            }
            if let problem = check() { return ClusterError(.invalidArgument, problem) }
            if sequences < 1 { return ClusterError(.invalidArgument, "a request needs at least one sequence") }
            let used = state.sequencesInFlight
            if used + sequences > configuration.maxBatch {
                return ClusterError(
                    .overloaded,
                    "\(sequences) more sequences with \(used) in flight would exceed this worker's \(configuration.maxBatch) credits")
            }
            if let image {
                // A reward model reads text only: it takes a job with an image whatever the policy model takes.
                if let refusal = engine?.imageRefusal, role != .reward || scorer?.readsImages == true {
                    return ClusterError(.invalidArgument, refusal)
                }
                if !image.data.isEmpty {
                    guard ContentHash.sha256Hex(image.data) == image.sha256 else {
                        return ClusterError(.badImage, "image bytes do not hash to \(image.sha256)")
                    }
                    state.images.insert(image.sha256, image.data)
                    metrics.inc(WorkerMetrics.images, [("event", "received")])
                    logger.info(
                        "image received", metadata: ["image": "\(image.sha256.prefix(12))", "bytes": .stringConvertible(image.data.count)])
                    promptImage = PromptImage(hash: image.sha256, data: image.data)
                } else if let data = state.images.data(image.sha256) {
                    metrics.inc(WorkerMetrics.images, [("event", "cache_hit")])
                    promptImage = PromptImage(hash: image.sha256, data: data)
                } else {
                    metrics.inc(WorkerMetrics.images, [("event", "cache_miss")])
                    return ClusterError(.imageNotCached, "image \(image.sha256) was not sent and is not cached here")
                }
            }
            state.inFlight[id] = Serving(sequences: sequences, control: control)
            return nil
        }
        if var refusal {
            refusal.requestID = id
            refusal.jobID = jobID
            metrics.inc(WorkerMetrics.refusals, [("code", ClusterError.name(refusal.code))])
            logger.warning("request refused", metadata: refusal.logMetadata)
            send(.error(refusal.wire))
            return
        }
        logger.debug("work received", metadata: ["n": .stringConvertible(sequences)])
        let task = Task.detached { [self, promptImage, logger] in
            let answer: Stagebeam_V1_Envelope.OneOf_Body
            do {
                answer = try await serve(promptImage, deadline, control)
            } catch {
                answer = .error(WorkerEngine.wireError(error, requestID: id, jobID: jobID).wire)
            }
            state.withLock { _ = $0.inFlight.removeValue(forKey: id) }
            if control.isStopped {
                // Whatever the engine made of it (a part of the tokens, an error of a cancelled
                // call), the coordinator hears that the request stopped.
                var metadata: Logger.Metadata = [
                    "seconds": .stringConvertible((milliseconds(ContinuousClock.now - received)).rounded() / 1000)
                ]
                if case .generateResult(let partial) = answer {
                    metadata["tokens"] = .stringConvertible(partial.candidates.map { Int($0.tokenCount) }.reduce(0, +))
                }
                logger.info("work stopped", metadata: metadata)
                let stopped = ClusterError(.cancelled, "request \(id) stopped: its job ended", requestID: id, jobID: jobID)
                metrics.inc(WorkerMetrics.requests, [("kind", role.logName), ("outcome", "stopped")])
                send(.error(stopped.wire))
                return
            }
            let seconds = milliseconds(ContinuousClock.now - received) / 1000
            WorkerMetrics.served(answer, role: role, sequences: sequences, seconds: seconds, on: metrics)
            var metadata: Logger.Metadata = [
                "n": .stringConvertible(sequences), "seconds": .stringConvertible((seconds * 1000).rounded() / 1000)
            ]
            if case .generateResult(let result) = answer {
                metadata["tokens"] = .stringConvertible(result.candidates.map { Int($0.tokenCount) }.reduce(0, +))
                metadata["prompt_tokens"] = .stringConvertible(result.promptTokens)
                metadata["reused_prefix_tokens"] = .stringConvertible(result.reusedPrefixTokens)
            }
            if case .rewardResult(let result) = answer {
                metadata["batch_requests"] = .stringConvertible(result.batchRequests)
                metadata["batch_candidates"] = .stringConvertible(result.batchCandidates)
            }
            if case .error(let failure) = answer {
                logger.error("work failed", metadata: metadata.merging(ClusterError(failure).logMetadata) { $1 })
            } else {
                logger.info("work done", metadata: metadata)
            }
            send(stamped(answer))
        }
        state.withLock { $0.inFlight[id]?.task = task }
    }

    /// A control that sends the request's candidates' new text to the coordinator, at most once per
    /// `intervalMs` (not under 20 ms, whatever the coordinator asks).
    private func progressControl(_ id: String, jobID: String, intervalMs: Double) -> GenerationControl {
        GenerationControl(textInterval: .milliseconds(max(intervalMs, 20))) { [weak self] texts in
            var progress = Stagebeam_V1_GenerateProgress()
            progress.requestID = id
            progress.jobID = jobID
            progress.candidates = texts.map { text in
                var candidate = Stagebeam_V1_CandidateProgress()
                candidate.index = UInt32(text.index)
                candidate.text = text.text
                candidate.tokenCount = UInt32(text.tokenCount)
                return candidate
            }
            self?.send(.generateProgress(progress))
        }
    }

    private func stamped(_ body: Stagebeam_V1_Envelope.OneOf_Body) -> Stagebeam_V1_Envelope.OneOf_Body {
        switch body {
        case .generateResult(var result):
            result.workerID = configuration.workerID
            return .generateResult(result)
        case .judgeResult(var result):
            result.workerID = configuration.workerID
            return .judgeResult(result)
        case .rewardResult(var result):
            result.workerID = configuration.workerID
            return .rewardResult(result)
        default:
            return body
        }
    }

    private func send(_ body: Stagebeam_V1_Envelope.OneOf_Body) {
        do {
            try link.send([try codec.encode(body)])
        } catch {
            logger.error("cannot send a message", metadata: ["message": "\(EnvelopeCodec.name(of: body))", "error": "\(error)"])
        }
    }

    private func stop(_ reason: ClusterError) {
        let waiter: CheckedContinuation<ClusterError, Never>? = state.withLock { state in
            guard state.stopped == nil else { return nil }
            state.stopped = reason
            defer { state.onStop = nil }
            return state.onStop
        }
        waiter?.resume(returning: reason)
    }
}

/// The worker, for the link's handlers (see `Worker.init`).
private final class WorkerReference: Sendable {
    private struct Weak { weak var value: Worker? }
    private let reference = Mutex(Weak())

    var worker: Worker? {
        get { reference.withLock { $0.value } }
        set { reference.withLock { $0.value = newValue } }
    }
}

/// Images by content hash, oldest dropped first.
struct ImageCache {
    let capacity: Int
    private var order: [String] = []
    private var bytes: [String: Data] = [:]

    init(capacity: Int) { self.capacity = capacity }

    var hashes: [String] { order }

    func data(_ hash: String) -> Data? { bytes[hash] }

    mutating func insert(_ hash: String, _ data: Data) {
        guard capacity > 0 else { return }
        if bytes[hash] == nil { order.append(hash) }
        bytes[hash] = data
        while order.count > capacity { bytes[order.removeFirst()] = nil }
    }
}
