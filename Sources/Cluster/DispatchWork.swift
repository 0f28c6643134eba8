import Search
import Wire

// The units of work the dispatcher moves between its queue, the workers and the search.

/// One `generate` call of a search: its candidates may be split over several requests (and sent
/// again after a failure) until every candidate has its result.
final class GenerateWork {
    let job: JobContext
    let request: GenerateRequest
    let continuation: CheckedContinuation<MeasuredCandidates, any Error>
    /// Candidate indices waiting to be sent.
    var unassigned: [Int]
    /// By candidate index; complete when no index is unassigned or in flight.
    var results: [GeneratedCandidate?]
    var failures = 0
    /// Workers that failed or lost this work: others are preferred for the retry.
    var failedOn: Set<[UInt8]> = []
    /// Workers whose answers make up the results (they now hold this request's prompt prefix).
    var answeredBy: Set<[UInt8]> = []
    /// What the answers so far cost on their workers, summed over the requests.
    var cost = ComputeCost()
    /// By candidate index: the requests that carried it so far (`CandidateText.attempt`).
    var attempts: [Int]
    var queuedSince: ContinuousClock.Instant
    var done = false

    init(
        job: JobContext, request: GenerateRequest, continuation: CheckedContinuation<MeasuredCandidates, any Error>,
        now: ContinuousClock.Instant
    ) {
        self.job = job
        self.request = request
        self.continuation = continuation
        unassigned = Array(request.seeds.indices)
        results = Array(repeating: nil, count: request.seeds.count)
        attempts = Array(repeating: 0, count: request.seeds.count)
        queuedSince = now
    }
}

/// A search's judge calls handed in together (one call, or a bracket round's, `Judge.judgeBatch`):
/// like a generate call's candidates, its matches may be split over several requests and judge
/// workers (and sent again after a failure) until every match has its reply.
final class JudgeWork {
    let job: JobContext
    /// All of one topic, mode and settings (one referee's), differing in prompt and seed.
    let requests: [JudgeRequest]
    let continuation: CheckedContinuation<[MeasuredReply], any Error>
    /// Match indices waiting to be sent.
    var unassigned: [Int]
    /// By match index; complete when no index is unassigned or in flight.
    var results: [MeasuredReply?]
    var failures = 0
    var failedOn: Set<[UInt8]> = []
    /// Workers whose answers make up the results (they now hold the judge prompt's prefix).
    var answeredBy: Set<[UInt8]> = []
    var queuedSince: ContinuousClock.Instant
    var done = false

    init(
        job: JobContext, requests: [JudgeRequest], continuation: CheckedContinuation<[MeasuredReply], any Error>,
        now: ContinuousClock.Instant
    ) {
        self.job = job
        self.requests = requests
        self.continuation = continuation
        unassigned = Array(requests.indices)
        results = Array(repeating: nil, count: requests.count)
        queuedSince = now
    }
}

/// One scorer call of a search: like a generate call, its candidates may be split over several
/// reward workers (each score depends on its candidate alone), all serving the job's reward model.
final class RewardWork {
    let job: JobContext
    let request: ScoreRequest
    /// The scorer the job's reward thresholds were calibrated with (`RewardCalibration.scorer`):
    /// only workers announcing it may score; nil: any.
    let scorer: String?
    let continuation: CheckedContinuation<MeasuredScores, any Error>
    /// Candidate indices waiting to be sent.
    var unassigned: [Int]
    /// By candidate index; complete when no index is unassigned or in flight.
    var results: [Double?]
    var failures = 0
    var failedOn: Set<[UInt8]> = []
    var queuedSince: ContinuousClock.Instant
    var done = false

    init(
        job: JobContext, request: ScoreRequest, scorer: String?, continuation: CheckedContinuation<MeasuredScores, any Error>,
        now: ContinuousClock.Instant
    ) {
        self.job = job
        self.request = request
        self.scorer = scorer
        self.continuation = continuation
        unassigned = Array(request.answers.indices)
        results = Array(repeating: nil, count: request.answers.count)
        queuedSince = now
    }

    /// Whether `worker` may score this work: it serves the reward role, with the job's reward model
    /// (once the job has one) and the scorer its thresholds were measured with.
    func canRun(on worker: WorkerRecord) -> Bool {
        guard worker.roles.contains(.reward) else { return false }
        if let pinned = job.rewardModel.identity, worker.rewardModelHash != pinned { return false }
        if let scorer, worker.rewardScorer != scorer { return false }
        return true
    }
}

/// A scorer call's answer: one score per candidate, and the reward model that gave them.
struct MeasuredScores: Codable, Sendable {
    var scores: [Double]
    /// `Ready.reward_model_hash` of the workers that scored.
    var rewardModel: String
}

enum Work {
    case generate(GenerateWork)
    case judge(JudgeWork)
    case reward(RewardWork)

    var role: Stagebeam_V1_Role {
        switch self {
        case .generate: .generate
        case .judge: .judge
        case .reward: .reward
        }
    }

    var jobID: String { job.id }

    var job: JobContext {
        switch self {
        case .generate(let work): work.job
        case .judge(let work): work.job
        case .reward(let work): work.job
        }
    }

    /// The stage it belongs to (a judge call's and a scorer call's: its topic), for logs.
    var stage: Stagebeam_V1_Stage {
        switch self {
        case .generate(let work): work.job.stage.current
        case .judge(let work): work.requests[0].topic.wire
        case .reward(let work): work.request.topic.wire
        }
    }

    var queuedSince: ContinuousClock.Instant {
        switch self {
        case .generate(let work): work.queuedSince
        case .judge(let work): work.queuedSince
        case .reward(let work): work.queuedSince
        }
    }

    var imageHash: String? { job.image?.sha256 }

    var isDone: Bool {
        switch self {
        case .generate(let work): work.done
        case .judge(let work): work.done
        case .reward(let work): work.done
        }
    }

    /// Whether both are the same piece of work (the same object, not equal contents).
    func isSame(as other: Work) -> Bool {
        switch (self, other) {
        case (.generate(let a), .generate(let b)): a === b
        case (.judge(let a), .judge(let b)): a === b
        case (.reward(let a), .reward(let b)): a === b
        default: false
        }
    }

    /// Whether `worker` may be sent this work (its role; for reward work, its reward model too).
    func canRun(on worker: WorkerRecord) -> Bool {
        if case .reward(let work) = self { return work.canRun(on: worker) }
        return worker.roles.contains(role)
    }
}

/// A request sent to a worker and not yet answered.
struct InFlight {
    let work: Work
    /// Candidate indices (generate, reward) or match indices (judge) carried by this request.
    let indices: [Int]
    let worker: [UInt8]
    let sequences: Int
    let deadline: ContinuousClock.Instant
    /// Given up on (deadline passed, work re-dispatched); kept until the worker answers or dies,
    /// because until then the worker may still be using the credits.
    var abandoned = false
}
