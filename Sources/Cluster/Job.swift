import Foundation
import SwiftProtobuf
import Wire

/// One job in the coordinator's table: queued → running (stage by stage) → succeeded | failed.
/// Every job accepted ends in one of the last two, with a result; none is dropped.
struct Job: Sendable {
    enum State: String, Sendable {
        case queued, running, succeeded, failed
    }

    /// A client waiting for this job's result.
    struct Subscriber: Sendable {
        var wantsEvents: Bool
        var wantsRecord: Bool
    }

    let id: String
    let submit: Stagebeam_V1_SubmitJob
    let image: ImagePayload?
    let accepted: ContinuousClock.Instant
    var state: State
    var started: ContinuousClock.Instant?
    /// The stage running now (for status).
    var stage = Stagebeam_V1_Stage.unspecified
    /// The current unit's candidate texts by index (a `winner` event names the winner's text).
    var candidateTexts: [Int: String] = [:]
    var subscribers: [[UInt8]: Subscriber] = [:]
    /// Whether the journal holds its acceptance (until then it is neither announced nor started).
    var journaled = false
    /// Submitters to tell once the acceptance is durable.
    var awaitingAcceptance: [[UInt8]] = []
    var result: Stagebeam_V1_JobResult?
    /// Answers journaled by an earlier run of this job (before a restart).
    let journaledSteps: [String: Data]

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
        state = result.map { $0.status == .succeeded ? .succeeded : .failed } ?? .queued
    }

    var isFinished: Bool { state == .succeeded || state == .failed }

    /// What makes two submissions the same job: everything but the delivery options. A job id
    /// submitted again with a different question or configuration is refused.
    static func fingerprint(_ submit: Stagebeam_V1_SubmitJob) -> [UInt8] {
        var core = submit
        core.streamEvents = false
        core.recordSearch = false
        return (try? core.serializedBytes()) ?? []
    }

    /// The result as one subscriber asked for it.
    static func result(_ result: Stagebeam_V1_JobResult, for subscriber: Subscriber) -> Stagebeam_V1_JobResult {
        var copy = result
        if !subscriber.wantsRecord { copy.searchRecordJson = Data() }
        return copy
    }
}
