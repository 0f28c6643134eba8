import Foundation
import Generation
import Transport
import Wire

/// A worker process's connection to the coordinator: announces itself (Ready: roles, credits, model
/// hash), serves generate and judge requests on its engine while the link heartbeats from its own
/// thread, and answers every failure with a typed `Error` instead of dying.
///
/// It refuses requests that would take it over its advertised credits (`overloaded`), so a
/// misbehaving coordinator cannot make it batch more than it said.
public final class Worker: @unchecked Sendable {
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

        public init(endpoint: String, workerID: String, roles: [Stagebeam_V1_Role], maxBatch: Int,
                    heartbeat: HeartbeatPolicy = HeartbeatPolicy(interval: .milliseconds(500)),
                    backoff: Backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5)), imageCacheCapacity: Int = 16,
                    curve: CurveRole? = nil) {
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
    private let engine: WorkerEngine
    private let codec = EnvelopeCodec()
    private let log: @Sendable (String) -> Void
    private var link: DealerLink!

    private let lock = NSLock()
    private var inFlight: [String: Int] = [:]  // request id → sequences
    private var images = ImageCache(capacity: 0)
    private var lastReady = ContinuousClock.now
    private var beat: UInt64 = 0
    private var stopped: ClusterError?
    private var linkConnected = false
    private var onStop: CheckedContinuation<ClusterError, Never>?

    public init(context: ZMQContext, configuration: Configuration, engine: WorkerEngine,
                log: @escaping @Sendable (String) -> Void) throws {
        guard !configuration.roles.isEmpty else { throw ClusterError(.invalidArgument, "a worker needs at least one role") }
        guard (1...engine.maxSamples).contains(configuration.maxBatch) else {
            throw ClusterError(.invalidArgument, "max batch must be between 1 and the engine's \(engine.maxSamples), got \(configuration.maxBatch)")
        }
        self.configuration = configuration
        self.engine = engine
        self.log = log
        images = ImageCache(capacity: configuration.imageCacheCapacity)
        WorkerMetrics.register(on: metrics, worker: self, engine: engine)
        link = try DealerLink(
            context: context,
            configuration: .init(endpoint: configuration.endpoint, routingID: Array(configuration.workerID.utf8),
                                 heartbeat: configuration.heartbeat, backoff: configuration.backoff,
                                 maxMessageBytes: Int64(codec.maxFrameBytes), name: "worker-link", curve: configuration.curve),
            greeting: { [unowned self] in readyFrames() },
            heartbeat: { [unowned self] in heartbeatFrames() },
            onMessage: { [unowned self] frames in handle(frames) },
            onStateChange: { [unowned self] state in
                lock.withLock { linkConnected = state == .connected }
                log("link: \(state)")
            })
    }

    /// Whether the link to the coordinator is up (heartbeats answered): a readiness probe's answer.
    public var isConnected: Bool { lock.withLock { linkConnected && stopped == nil } }

    /// Waits until the coordinator refuses this worker for good (e.g. a model mismatch).
    public func waitUntilRefused() async -> ClusterError {
        await withCheckedContinuation { continuation in
            lock.withLock {
                if let stopped { continuation.resume(returning: stopped) } else { onStop = continuation }
            }
        }
    }

    /// Says goodbye (the coordinator re-dispatches this worker's work at once) and closes the link.
    public func close(reason: String = "shutting down") {
        var goodbye = Stagebeam_V1_Disconnect()
        goodbye.reason = reason
        if let frame = try? codec.encode(.disconnect(goodbye)) { try? link.send([frame]) }
        // Give the link's thread a moment to put the goodbye on the wire.
        Thread.sleep(forTimeInterval: 0.05)
        link.close()
    }

    // MARK: Link thread

    private func readyFrames() -> [[UInt8]] {
        var ready = Stagebeam_V1_Ready()
        ready.protocolVersion = EnvelopeCodec.protocolVersion
        ready.workerID = configuration.workerID
        ready.modelName = engine.modelName
        ready.modelHash = engine.modelHash
        ready.roles = configuration.roles
        ready.maxBatchSequences = UInt32(configuration.maxBatch)
        ready.contextTokens = UInt32(clamping: engine.contextTokens)
        ready.imageCache.capacityImages = UInt32(configuration.imageCacheCapacity)
        ready.softwareVersion = "stagebeam (protocol \(EnvelopeCodec.protocolVersion))"
        lock.withLock {
            ready.imageCache.cachedSha256 = images.hashes
            lastReady = .now
        }
        return [(try? codec.encode(.ready(ready))) ?? []]
    }

    /// Sequences in flight now, and images cached (for metrics).
    func load() -> (sequences: Int, images: Int) {
        lock.withLock { (inFlight.values.reduce(0, +), images.hashes.count) }
    }

    private func heartbeatFrames() -> [[UInt8]] {
        var message = Stagebeam_V1_Heartbeat()
        lock.withLock {
            beat += 1
            message.sequence = beat
            let used = inFlight.values.reduce(0, +)
            message.inFlightSequences = UInt32(used)
            message.creditsAvailable = UInt32(max(configuration.maxBatch - used, 0))
            message.inFlightRequestIds = inFlight.keys.sorted()
        }
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
            log("undecodable message from the coordinator: \(error)")
            send(.error(error.errorMessage()))
            return
        }
        switch body {
        case .generateRequest(let request):
            accept(request.requestID, jobID: request.jobID, role: .generate, sequences: Int(request.n), deadlineMs: request.deadlineMs,
                   image: request.hasImage ? request.image : nil,
                   check: { request.seeds.count == Int(request.n) ? nil : "n is \(request.n) but \(request.seeds.count) seeds were sent" }) { [engine] image, deadline in
                .generateResult(try await engine.generate(request, image: image, deadline: deadline))
            }
        case .judgeRequest(let request):
            accept(request.requestID, jobID: request.jobID, role: .judge, sequences: 1, deadlineMs: request.deadlineMs,
                   image: request.hasImage ? request.image : nil,
                   check: { nil }) { [engine] image, deadline in
                .judgeResult(try await engine.judge(request, image: image, deadline: deadline))
            }
        case .heartbeat(let beat):
            // A coordinator that does not know us (it restarted): announce ourselves again, at most
            // once per liveness period (answers to beats sent before the Ready also say "unknown").
            let due = lock.withLock { ContinuousClock.now - lastReady > configuration.heartbeat.deadAfter }
            if !beat.known && due {
                log("the coordinator does not know this worker (restarted?): sending Ready again")
                try? link.send(readyFrames())
            }
        case .error(let error):
            let problem = ClusterError(error)
            log("coordinator: \(problem)")
            // Refusals of the worker itself (not of one request) are final: retrying cannot help.
            if error.requestID.isEmpty, error.code == .modelMismatch || error.code == .invalidArgument {
                stop(problem)
            }
        default:
            send(.error(ClusterError(.unexpectedMessage, "a worker does not accept \(EnvelopeCodec.name(of: body)) messages").wire))
        }
    }

    /// Checks a request against roles, credits and images, then serves it off the link's thread.
    private func accept(_ id: String, jobID: String, role: Stagebeam_V1_Role, sequences: Int, deadlineMs: Double,
                        image: Stagebeam_V1_ImageRef?,
                        check: () -> String?,
                        serve: @escaping @Sendable (PromptImage?, ContinuousClock.Instant?) async throws -> Stagebeam_V1_Envelope.OneOf_Body) {
        let received = ContinuousClock.now
        // Work still waiting for the engine at its deadline is refused: the coordinator has already
        // sent it elsewhere.
        let deadline = deadlineMs > 0 ? received + .nanoseconds(Int64(deadlineMs * 1e6)) : nil
        var promptImage: PromptImage?
        let refusal: ClusterError? = lock.withLock {
            if !configuration.roles.contains(role) {
                return ClusterError(.unexpectedMessage, "worker \(configuration.workerID) does not serve \(Dispatcher.roleName(role)) requests")
            }
            if let problem = check() { return ClusterError(.invalidArgument, problem) }
            if sequences < 1 { return ClusterError(.invalidArgument, "a request needs at least one sequence") }
            let used = inFlight.values.reduce(0, +)
            if used + sequences > configuration.maxBatch {
                return ClusterError(.overloaded, "\(sequences) more sequences with \(used) in flight would exceed this worker's \(configuration.maxBatch) credits")
            }
            if let image {
                guard engine.takesImages else {
                    return ClusterError(.invalidArgument, "model \(engine.modelName) is a text-only checkpoint and cannot take images")
                }
                if !image.data.isEmpty {
                    guard ContentHash.sha256Hex(image.data) == image.sha256 else {
                        return ClusterError(.badImage, "image bytes do not hash to \(image.sha256)")
                    }
                    images.insert(image.sha256, image.data)
                    metrics.inc(WorkerMetrics.images, [("event", "received")])
                    log("image \(image.sha256.prefix(12)) received: \(image.data.count) bytes")
                    promptImage = PromptImage(hash: image.sha256, data: image.data)
                } else if let data = images.data(image.sha256) {
                    metrics.inc(WorkerMetrics.images, [("event", "cache_hit")])
                    promptImage = PromptImage(hash: image.sha256, data: data)
                } else {
                    metrics.inc(WorkerMetrics.images, [("event", "cache_miss")])
                    return ClusterError(.imageNotCached, "image \(image.sha256) was not sent and is not cached here")
                }
            }
            inFlight[id] = sequences
            return nil
        }
        if var refusal {
            refusal.requestID = id
            refusal.jobID = jobID
            metrics.inc(WorkerMetrics.refusals, [("code", ClusterError.name(refusal.code))])
            log("refused \(Dispatcher.roleName(role)) \(id): \(refusal)")
            send(.error(refusal.wire))
            return
        }
        log("\(Dispatcher.roleName(role)) \(id) n=\(sequences)")
        Task.detached { [self, promptImage] in
            let answer: Stagebeam_V1_Envelope.OneOf_Body
            do {
                answer = try await serve(promptImage, deadline)
            } catch {
                let failure = WorkerEngine.wireError(error, requestID: id, jobID: jobID)
                log("\(Dispatcher.roleName(role)) \(id) failed: \(failure)")
                answer = .error(failure.wire)
            }
            lock.withLock { inFlight[id] = nil }
            WorkerMetrics.served(answer, role: role, sequences: sequences, seconds: milliseconds(ContinuousClock.now - received) / 1000, on: metrics)
            log("\(Dispatcher.roleName(role)) \(id) done in \(Int(milliseconds(ContinuousClock.now - received))) ms")
            send(stamped(answer))
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
        default:
            return body
        }
    }

    private func send(_ body: Stagebeam_V1_Envelope.OneOf_Body) {
        do {
            try link.send([try codec.encode(body)])
        } catch {
            log("cannot send \(EnvelopeCodec.name(of: body)): \(error)")
        }
    }

    private func stop(_ reason: ClusterError) {
        let waiter: CheckedContinuation<ClusterError, Never>? = lock.withLock {
            guard stopped == nil else { return nil }
            stopped = reason
            defer { onStop = nil }
            return onStop
        }
        waiter?.resume(returning: reason)
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
