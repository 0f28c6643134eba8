import Foundation
import Logging
import Search
import Synchronization
import Transport
import Wire

/// An image of a job: its bytes travel to a worker once, then only its hash.
public struct ImagePayload: Sendable {
    public let sha256: String
    public let data: [UInt8]

    public init(data: [UInt8]) {
        self.sha256 = ContentHash.sha256Hex(data)
        self.data = data
    }
}

/// What a remote request needs to know about its job.
struct JobContext: Sendable {
    let id: String
    let image: ImagePayload?
    /// Candidates per step (N), for the `StageStarted` events.
    let beam: Int
    /// The job's seed, from which every candidate's seed derives: a generate request's seeds name
    /// their candidates (best-of-N's requests hold candidates of one prefix, not always 0…n−1).
    var seed: UInt64 = 0
    /// Where the text of candidates being generated goes (`JobEvent.candidate_text`).
    var candidateText = CandidateTextRelay()
    /// The sentence method numbers its steps by sentence, the others by stage (`CurrentStage.step`).
    var stepsBySentence = false
    /// The workers that answered the job's latest generate request: they hold its prompt prefix
    /// (question, image, earlier stages) in their prefix caches.
    let prefixHolders = PrefixHolders()
    /// The judge workers that answered the job's judge calls: they hold the opening of its judge
    /// prompt (image, instructions, question) in their prefix caches.
    let judgePrefixHolders = PrefixHolders()
    /// The reward model whose scores the job uses: set by its first scorer call sent out (or
    /// taken from the journal), then every later call goes to workers of that model only.
    let rewardModel = RewardModelPin()
    /// The stage the job's search is in, from its events: generate requests carry it for the
    /// workers' logs.
    let stage = CurrentStage()
    /// Prompt tokens of the job's answered requests (`JobCounts`).
    let usage = JobUsage()
}

final class PrefixHolders: Sendable {
    private let holders = Mutex<Set<[UInt8]>>([])

    var workers: Set<[UInt8]> {
        get { holders.withLock { $0 } }
        set { holders.withLock { $0 = newValue } }
    }

    func add(_ workers: Set<[UInt8]>) {
        holders.withLock { $0.formUnion(workers) }
    }
}

final class RewardModelPin: Sendable {
    private let pinned = Mutex<String?>(nil)

    var identity: String? { pinned.withLock { $0 } }

    /// Pins `identity` unless the job has one already; returns the job's.
    @discardableResult
    func pin(_ identity: String) -> String {
        pinned.withLock { pinned in
            if pinned == nil { pinned = identity }
            return pinned!
        }
    }
}

final class CurrentStage: Sendable {
    private let stage = Mutex((stage: Stagebeam_V1_Stage.unspecified, step: 0))

    var current: Stagebeam_V1_Stage {
        get { stage.withLock { $0.stage } }
        set { stage.withLock { $0.stage = newValue } }
    }

    /// The search step whose candidates are generated now (`JobEvent.step`): a stage's index for
    /// the stage and best-of-N methods, the sentence's for the sentence method (the one after the
    /// latest winner).
    var step: Int {
        get { stage.withLock { $0.step } }
        set { stage.withLock { $0.step = newValue } }
    }
}

/// The text of a job's candidates while workers generate them, for the clients that asked for it
/// (`SubmitJob.stream_candidate_text`): generate requests ask their workers for progress once a
/// client wants it, and the coordinator delivers each piece as a `JobEvent`.
final class CandidateTextRelay: Sendable {
    private struct State {
        var wanted = false
        var intervalMs = CandidateTextRelay.defaultIntervalMs
        var deliver: (@Sendable (Stagebeam_V1_JobEvent) -> Void)?
    }
    private let state = Mutex(State())

    static let defaultIntervalMs = 250.0
    static let smallestIntervalMs = 50.0

    /// `intervalMs`: the job's `candidate_text_interval_ms` (0: the default; raised to the smallest).
    func configure(intervalMs: Double) {
        state.withLock { $0.intervalMs = intervalMs == 0 ? Self.defaultIntervalMs : max(intervalMs, Self.smallestIntervalMs) }
    }

    /// A client wants the text: requests sent from now on ask for progress.
    func want() { state.withLock { $0.wanted = true } }

    func attach(_ deliver: @escaping @Sendable (Stagebeam_V1_JobEvent) -> Void) { state.withLock { $0.deliver = deliver } }

    /// `GenerateRequest.progress_interval_ms` for the job's next request (0: nobody wants the text).
    var progressIntervalMs: Double { state.withLock { $0.wanted ? $0.intervalMs : 0 } }

    var delivery: (@Sendable (Stagebeam_V1_JobEvent) -> Void)? { state.withLock { $0.deliver } }
}

/// Why a worker left the registry: its log line's and `stagebeam_worker_removals_total`'s `reason`.
enum WorkerRemoval {
    case missedHeartbeats
    case disconnected(goodbye: String)
    case reconnected

    var reason: String {
        switch self {
        case .missedHeartbeats: "missed_heartbeats"
        case .disconnected: "disconnected"
        case .reconnected: "reconnected"
        }
    }
}

/// Why work goes back to the queue: its "request re-dispatched" log line's `reason` and level.
enum Redispatch {
    /// The worker was busy (expected after a coordinator restart).
    case overloaded
    case deadlineExceeded
    case workerLost
    /// The worker answered with an error that another worker may not hit.
    case failed(ClusterError)

    var reason: String {
        switch self {
        case .overloaded: "overloaded"
        case .deadlineExceeded: "deadline_exceeded"
        case .workerLost: "worker_lost"
        case .failed: "error"
        }
    }

    /// Busy workers are expected; the other causes cost a worker's time.
    var level: Logger.Level {
        if case .overloaded = self { return .notice }
        return .warning
    }
}

/// The coordinator's scheduler: the worker registry, the work waiting for credits, the requests in
/// flight, and everything that moves work between them (credits freed, workers dead, deadlines).
///
/// The search's remote generator, judge and scorer hand work in with `generate`/`judge`/`score` and await it; the
/// socket thread feeds in workers' messages and clock ticks. All of its state is one
/// `DispatchState` inside a `Mutex`, taken once per message; awaiting callers are resumed after it
/// is released.
///
/// Rules:
/// - A worker is never sent more sequences than its free credits (a GenerateRequest's n, one per
///   JudgeRequest, one per candidate of a RewardRequest). A generate request's candidates (and a
///   scorer call's, over the reward workers) are split across the live generate workers in
///   proportion to their free credits; what does not fit waits, oldest work first. Workers holding
///   the job's previous prompt in their prefix cache are filled first: the next stage's prompt
///   extends it, so they prefill only the new text.
/// - A bracket round's judge calls are spread evenly over the judge workers with free credits (a
///   round costs one batch's latency where there are workers enough), as several matches per
///   request (`JudgeRequest.more_matches`: the worker decodes them as one batch). Judge workers that
///   judged the job before come first (their prefix caches hold its judge prompt's opening: image,
///   instructions, question), then those holding its generation prompt, so a single call goes to one
///   of them. A worker that answers a request's first match alone (built before `more_matches`) is
///   sent the others again, and one match per request from then on.
/// - A request whose worker dies, reconnects, answers a retryable error or misses its deadline is
///   sent again elsewhere with the same seeds (the engine is batch-invariant: same tokens). A
///   request that failed `maxAttempts` times, or failed for a reason another worker cannot fix
///   (e.g. a prompt over the context), fails its search with that error.
/// - Work that finds no live worker of its role for `noWorkerWait` fails with `no_worker`.
/// - Every worker of a role serves one model (docs/invariants.md, invariant 1: the same job gives the same answer
///   on any worker): the identity the operator pinned, else that of the role's registered workers —
///   the first one decided, and the choice is forgotten when the last of them leaves, so a peer that
///   announces a made-up model and goes away does not lock the cluster out. A peer that stays
///   connected can still claim an unpinned role first; only a pinned identity or CURVE stops that.
///   The reward role's model is the reward model's (`Ready.reward_model_hash`), which the pin does
///   not cover; and a job keeps the reward model of its first scores (`JobContext.rewardModel`)
///   even when the role's model changes while it runs: its later calls wait for workers of it.
final class Dispatcher: Sendable {
    struct Settings: Sendable {
        var heartbeat: HeartbeatPolicy
        var requestTimeout: Duration
        var noWorkerWait: Duration
        var maxAttempts = 5
        /// The model identity every worker must serve in every role, pinned by the operator
        /// (`coordinator --model` or `--model-id`); nil: each role's first registered worker decides.
        var pinnedModel: String? = nil
    }

    let settings: Settings
    private let state: Mutex<DispatchState>

    /// `send` sends one routed message ([routing id, envelope]) and must be thread-safe; `logger` is
    /// the coordinator's (every line about work names its job, `job_id`); `metrics` counts requests,
    /// batch sizes, images and worker removals.
    init(
        settings: Settings, codec: EnvelopeCodec, send: @escaping @Sendable ([[UInt8]]) -> Void, logger: Logger,
        metrics: Metrics? = nil
    ) {
        self.settings = settings
        state = Mutex(DispatchState(settings: settings, codec: codec, send: send, logger: logger, metrics: metrics))
    }

    // MARK: Work from the search

    func generate(_ request: GenerateRequest, job: JobContext) async throws -> MeasuredCandidates {
        if request.seeds.isEmpty { return MeasuredCandidates(candidates: [], cost: nil) }
        return try await withCheckedThrowingContinuation { continuation in
            locked { $0.enqueue(.generate(GenerateWork(job: job, request: request, continuation: continuation, now: .now))) }
        }
    }

    func judge(_ request: JudgeRequest, job: JobContext) async throws -> MeasuredReply {
        try await judgeBatch([request], job: job)[0]
    }

    /// A bracket round's judge calls (all of one referee: one topic, mode and settings), replies in
    /// their order: sent in as few requests as the judge workers' credits allow, spread over them.
    func judgeBatch(_ requests: [JudgeRequest], job: JobContext) async throws -> [MeasuredReply] {
        if requests.isEmpty { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            locked { $0.enqueue(.judge(JudgeWork(job: job, requests: requests, continuation: continuation, now: .now))) }
        }
    }

    /// `scorer`: the scorer the job's thresholds were calibrated with (nil: any reward worker).
    func score(_ request: ScoreRequest, scorer: String?, job: JobContext) async throws -> MeasuredScores {
        if request.answers.isEmpty { return MeasuredScores(scores: [], rewardModel: job.rewardModel.identity ?? "") }
        return try await withCheckedThrowingContinuation { continuation in
            locked {
                $0.enqueue(.reward(RewardWork(job: job, request: request, scorer: scorer, continuation: continuation, now: .now)))
            }
        }
    }

    /// Ends `job`'s work with `error` (cancelled, or past its deadline): its queued work is dropped,
    /// its requests in flight are abandoned and their workers told to stop them (`StopRequests`:
    /// they answer `cancelled` at their next token; the credits come back with that answer, and a
    /// late result is discarded), and work it hands in later fails at once, until `forget(job:)`.
    func end(job: String, _ error: ClusterError) {
        locked { $0.end(job: job, error) }
    }

    /// Drops what is kept about a finished job.
    func forget(job: String) {
        state.withLock { $0.forget(job: job) }
    }

    /// Requests of `job` that were sent again after a failure, so far.
    func redispatched(job: String) -> Int {
        state.withLock { $0.redispatchedByJob[job] ?? 0 }
    }

    /// The distinct determinism caveats of the workers that answered `job`'s requests (`JobResult.determinism_caveats`).
    func determinismCaveats(job: String) -> [String] {
        state.withLock { $0.caveatsByJob[job].map { $0.sorted() } ?? [] }
    }

    // MARK: Messages from workers (socket thread)

    /// Registers a worker (again, after a reconnect: what it had in flight is re-dispatched).
    /// Returns the error to answer with when the worker is refused.
    func ready(from key: [UInt8], _ ready: Stagebeam_V1_Ready, now: ContinuousClock.Instant) -> ClusterError? {
        if ready.roles.isEmpty || ready.roles.contains(where: { $0 != .generate && $0 != .judge && $0 != .reward }) {
            return ClusterError(.invalidArgument, "worker \(ready.workerID) announced no usable role (generate, judge, reward)")
        }
        if ready.roles.contains(.reward), ready.rewardModelHash.isEmpty || ready.rewardScorer.isEmpty {
            return ClusterError(
                .invalidArgument, "worker \(ready.workerID) serves the reward role but announced no reward model hash or scorer")
        }
        if ready.maxBatchSequences == 0 {
            return ClusterError(.invalidArgument, "worker \(ready.workerID) announced max batch 0: it could never be sent work")
        }
        if ready.modelHash.isEmpty {
            return ClusterError(.invalidArgument, "worker \(ready.workerID) announced no model hash")
        }
        return locked { $0.register(key, ready, now: now) }
    }

    /// The recommended search settings announced by the cluster's generate workers (of the one with the
    /// smallest id, so every coordinator decides alike); nil while none is registered.
    func announcedRecommendations() -> Data? {
        state.withLock { $0.announcedRecommendations() }
    }

    /// The scorer of the cluster's reward workers (`Ready.reward_scorer`, of the one with the
    /// smallest id); nil while none is registered.
    func rewardScorer() -> String? {
        state.withLock { state in
            state.workers.values.filter { $0.roles.contains(.reward) }.min { $0.workerID < $1.workerID }?.rewardScorer
        }
    }

    /// A sign of life from `key`; returns whether it is a registered worker.
    func heard(from key: [UInt8], now: ContinuousClock.Instant) -> Bool {
        state.withLock { $0.heard(from: key, now: now) }
    }

    func disconnect(from key: [UInt8], reason: String, now: ContinuousClock.Instant) {
        locked { $0.disconnect(from: key, reason: reason, now: now) }
    }

    func generateResult(from key: [UInt8], _ result: Stagebeam_V1_GenerateResult, now: ContinuousClock.Instant) {
        locked { $0.generateResult(from: key, result, now: now) }
    }

    func judgeResult(from key: [UInt8], _ result: Stagebeam_V1_JudgeResult, now: ContinuousClock.Instant) {
        locked { $0.judgeResult(from: key, result, now: now) }
    }

    /// Text of candidates being generated: delivered as its job's `candidate_text` events.
    func generateProgress(from key: [UInt8], _ progress: Stagebeam_V1_GenerateProgress) {
        locked { $0.generateProgress(from: key, progress) }
    }

    func rewardResult(from key: [UInt8], _ result: Stagebeam_V1_RewardResult, now: ContinuousClock.Instant) {
        locked { $0.rewardResult(from: key, result, now: now) }
    }

    /// An `Error` from a worker; one naming a request fails (and usually re-dispatches) it.
    func workerError(from key: [UInt8], _ error: Stagebeam_V1_Error, now: ContinuousClock.Instant) {
        locked { $0.workerError(from: key, error, now: now) }
    }

    // MARK: The clock (socket thread)

    /// Finds dead workers and missed deadlines, fails work that waited too long for a worker, and
    /// dispatches what now fits.
    func tick(now: ContinuousClock.Instant) {
        locked { $0.tick(now: now) }
    }

    // MARK: Status

    struct Snapshot: Sendable {
        var workers: [Stagebeam_V1_WorkerStatus]
        var pendingRequests: Int
        var redispatched: UInt64
    }

    func snapshot(now: ContinuousClock.Instant) -> Snapshot {
        state.withLock { $0.snapshot(now: now) }
    }

    /// Runs `body` on the state under the lock, dispatches whatever now fits, then, with the lock
    /// released, resumes the callers whose work finished. `body` is `@Sendable` so that it brings
    /// only sendable values into the state (the compiler checks it).
    private func locked<Result: Sendable>(_ body: @Sendable (inout DispatchState) -> Result) -> Result {
        let (result, completions) = state.withLock { state in
            let result = body(&state)
            state.dispatch(now: .now)
            return (result, state.takeCompletions())
        }
        for completion in completions { completion() }
        return result
    }
}
