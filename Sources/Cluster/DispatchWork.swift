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

/// One judge call of a search.
final class JudgeWork {
    let job: JobContext
    let request: JudgeRequest
    let continuation: CheckedContinuation<MeasuredReply, any Error>
    /// Sent and not yet answered or re-queued.
    var assigned = false
    var failures = 0
    var failedOn: Set<[UInt8]> = []
    var queuedSince: ContinuousClock.Instant
    var done = false

    init(
        job: JobContext, request: JudgeRequest, continuation: CheckedContinuation<MeasuredReply, any Error>,
        now: ContinuousClock.Instant
    ) {
        self.job = job
        self.request = request
        self.continuation = continuation
        queuedSince = now
    }
}

enum Work {
    case generate(GenerateWork)
    case judge(JudgeWork)

    var role: Stagebeam_V1_Role {
        if case .generate = self { return .generate }
        return .judge
    }

    var jobID: String {
        switch self {
        case .generate(let work): work.job.id
        case .judge(let work): work.job.id
        }
    }

    /// The stage it belongs to (a judge call's: its topic), for logs.
    var stage: Stagebeam_V1_Stage {
        switch self {
        case .generate(let work): work.job.stage.current
        case .judge(let work): work.request.topic.wire
        }
    }

    var queuedSince: ContinuousClock.Instant {
        switch self {
        case .generate(let work): work.queuedSince
        case .judge(let work): work.queuedSince
        }
    }

    var imageHash: String? {
        switch self {
        case .generate(let work): work.job.image?.sha256
        case .judge(let work): work.job.image?.sha256
        }
    }

    var isDone: Bool {
        switch self {
        case .generate(let work): work.done
        case .judge(let work): work.done
        }
    }
}

/// A request sent to a worker and not yet answered.
struct InFlight {
    let work: Work
    /// Candidate indices (generate) carried by this request.
    let indices: [Int]
    let worker: [UInt8]
    let sequences: Int
    let deadline: ContinuousClock.Instant
    /// Given up on (deadline passed, work re-dispatched); kept until the worker answers or dies,
    /// because until then the worker may still be using the credits.
    var abandoned = false
}
