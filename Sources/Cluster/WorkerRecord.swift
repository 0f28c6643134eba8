import Foundation
import Transport
import Wire

/// What the coordinator knows about one registered worker.
struct WorkerRecord {
    /// The worker's ZeroMQ routing id (frame 0 of its messages).
    let key: [UInt8]
    let workerID: String
    let modelName: String
    /// The identity of the model it serves (`ModelIdentity`) as generate and judge worker.
    let modelHash: String
    let roles: Set<Stagebeam_V1_Role>
    /// The reward role's model identity and scorer name (`Ready.reward_model_hash`, `reward_scorer`).
    let rewardModelHash: String
    let rewardScorer: String
    /// The reward model's name, and whether it is the policy model (self-reward) or a checkpoint of its own.
    let rewardModelName: String
    let rewardModelKind: Stagebeam_V1_RewardModelKind
    /// Its model's recommended search settings (`Ready.recommendations_json`; empty: none).
    let recommendationsJSON: Data
    /// Credits: the most sequences it may have in flight.
    let maxSequences: Int
    /// Why the same seeds may not give the same tokens on it (`Ready.determinism_caveat`; empty: they do).
    let determinismCaveat: String
    /// The protocol version its requests are written in: the highest both sides speak.
    let protocolVersion: UInt32
    /// Sequences sent and not yet answered, including those of requests given up on (re-dispatched
    /// after a deadline): the worker may still be decoding them, so they still use its credits.
    var inFlightSequences = 0
    /// Images it holds (announced in Ready, or sent to it since).
    var images: Set<String>
    var requestsCompleted: UInt64 = 0
    var requestsRedispatched: UInt64 = 0
    var largestRequest = 0
    var utilisation: BusyWindow
    /// Not sent work before this time (it answered `overloaded`).
    var restingUntil: ContinuousClock.Instant
    /// It answered a judge request of several matches with the first match's verdict alone (built
    /// before `JudgeRequest.more_matches`): it is sent one match per request.
    var judgesOneMatchPerRequest = false

    var freeCredits: Int { max(maxSequences - inFlightSequences, 0) }

    init(key: [UInt8], ready: Stagebeam_V1_Ready, now: ContinuousClock.Instant) {
        self.key = key
        workerID = ready.workerID
        modelName = ready.modelName
        modelHash = ready.modelHash
        roles = Set(ready.roles)
        rewardModelHash = ready.rewardModelHash
        rewardScorer = ready.rewardScorer
        rewardModelName = ready.rewardModelName
        rewardModelKind = ready.rewardModelKind
        recommendationsJSON = ready.recommendationsJson
        maxSequences = Int(ready.maxBatchSequences)
        determinismCaveat = ready.determinismCaveat
        protocolVersion = max(min(ready.protocolVersion, EnvelopeCodec.protocolVersion), EnvelopeCodec.oldestProtocolVersion)
        images = Set(ready.imageCache.cachedSha256)
        utilisation = BusyWindow(start: now)
        restingUntil = now
    }
}

/// The fraction of the last minute a worker spent with work in flight.
struct BusyWindow {
    static let window = Duration.seconds(60)
    private let start: ContinuousClock.Instant
    /// Finished busy periods that end within the window.
    private var periods: [(ContinuousClock.Instant, ContinuousClock.Instant)] = []
    private var busySince: ContinuousClock.Instant?

    init(start: ContinuousClock.Instant) { self.start = start }

    mutating func update(busy: Bool, at now: ContinuousClock.Instant) {
        if busy, busySince == nil { busySince = now }
        if !busy, let since = busySince {
            periods.append((since, now))
            busySince = nil
        }
        periods.removeAll { $0.1 < now - Self.window }
    }

    func fraction(at now: ContinuousClock.Instant) -> Double {
        let from = max(now - Self.window, start)
        let span = now - from
        guard span > .zero else { return 0 }
        var busy = Duration.zero
        for (a, b) in periods where b > from { busy += b - max(a, from) }
        if let since = busySince { busy += now - max(since, from) }
        return min(busy / span, 1)
    }
}
