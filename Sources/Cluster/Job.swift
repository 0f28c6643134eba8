import Foundation
import SwiftProtobuf
import Wire

/// One job in the coordinator's table: queued → running (stage by stage) → succeeded | failed |
/// cancelled. Every job accepted ends in one of the last three, with a result; none is dropped.
struct Job: Sendable {
    enum State: String, Sendable {
        case queued, running, succeeded, failed, cancelled

        /// The state a final result puts a job in.
        init(finished status: Stagebeam_V1_JobStatus) {
            switch status {
            case .succeeded: self = .succeeded
            case .cancelled: self = .cancelled
            default: self = .failed
            }
        }
    }

    /// A client waiting for this job's result.
    struct Subscriber: Sendable {
        var wantsEvents: Bool
        var wantsRecord: Bool
        /// The protocol version to write to it in.
        var version: UInt32
        /// With `wantsEvents`: the candidates' text while they are generated too.
        var wantsText = false
    }

    /// Who may list the job (`ListJobs`): a name the client chose, else the submitting connection.
    enum Owner: Hashable, Sendable {
        case named(String)
        case connection([UInt8])
    }

    let id: String
    let submit: Stagebeam_V1_SubmitJob
    let image: ImagePayload?
    let accepted: ContinuousClock.Instant
    var state: State
    var started: ContinuousClock.Instant?
    /// The stage running now (for status).
    var stage = Stagebeam_V1_Stage.unspecified
    /// The current stage's candidate texts by unit and index (a `winner` event names the winner's text).
    var candidateTexts: [Int: [Int: String]] = [:]
    var subscribers: [[UInt8]: Subscriber] = [:]
    /// Whether the journal holds its acceptance (until then it is neither announced nor started).
    var journaled = false
    /// Submitters to tell once the acceptance is durable.
    var awaitingAcceptance: [[UInt8]] = []
    var result: Stagebeam_V1_JobResult?
    /// Its search is over and its result being journaled: too late to end it.
    var finishing = false
    /// Why the job is being ended before its search finished (cancelled, or past its deadline).
    var ending: ClusterError?
    /// When its `SubmitJob.deadline_ms` passes (nil: no deadline).
    let deadline: ContinuousClock.Instant?
    var owner: Owner?
    /// Answers journaled by an earlier run of this job (before a restart).
    let journaledSteps: [String: Data]
    /// Where its candidates' text goes while they are generated, once a client wants it.
    let candidateText = CandidateTextRelay()

    init(
        submit: Stagebeam_V1_SubmitJob, result: Stagebeam_V1_JobResult? = nil, journaledSteps: [String: Data] = [:],
        now: ContinuousClock.Instant
    ) {
        id = submit.jobID
        self.submit = submit
        image = submit.image.isEmpty ? nil : ImagePayload(data: Array(submit.image))
        accepted = now
        self.result = result
        self.journaledSteps = journaledSteps
        state = result.map { State(finished: $0.status) } ?? .queued
        deadline = submit.deadlineMs > 0 ? now + .milliseconds(submit.deadlineMs) : nil
        if !submit.owner.isEmpty { owner = .named(submit.owner) }
        candidateText.configure(intervalMs: submit.candidateTextIntervalMs)
    }

    /// Adds a client waiting for the job.
    mutating func subscribe(_ peer: [UInt8], _ subscriber: Subscriber) {
        subscribers[peer] = subscriber
        if subscriber.wantsText { candidateText.want() }
    }

    var isFinished: Bool { state == .succeeded || state == .failed || state == .cancelled }

    /// What makes two submissions the same job: everything but the delivery options (events, the
    /// search record, deadline, detachment, owner: the first submission's hold; the reward calibration
    /// the coordinator filled in). A job id
    /// submitted again with a different question or configuration is refused.
    static func fingerprint(_ submit: Stagebeam_V1_SubmitJob) -> [UInt8] {
        var core = submit
        core.streamEvents = false
        core.recordSearch = false
        core.deadlineMs = 0
        core.detached = false
        core.owner = ""
        core.streamCandidateText = false
        core.candidateTextIntervalMs = 0
        // Filled by the coordinator from the reward workers registered at the time, not chosen by the client.
        core.clearRewardCalibration()
        return (try? core.serializedBytes()) ?? []
    }

    /// The result as one subscriber asked for it. Version 1 knows no cancelled status: a cancelled
    /// job reads as failed there (its error, code `cancelled`, says why).
    static func result(_ result: Stagebeam_V1_JobResult, for subscriber: Subscriber) -> Stagebeam_V1_JobResult {
        var copy = result
        if !subscriber.wantsRecord { copy.searchRecordJson = Data() }
        if subscriber.version < 2, copy.status == .cancelled { copy.status = .failed }
        return copy
    }
}
