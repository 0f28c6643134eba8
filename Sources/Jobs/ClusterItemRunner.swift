import Cluster
import Foundation
import Logging
import Search
import SwiftProtobuf
import Synchronization
import Transport
import Wire

/// Runs items as jobs on a coordinator, one `Client` (one DEALER link) per job in flight.
///
/// An item's job id is a hash of its whole job (question, image, options, seed): after a SIGKILL the
/// rerun submits the same ids, and the coordinator answers jobs it already finished from its table or
/// journal and re-attaches to those still running, instead of computing them again.
public final class ClusterItemRunner: ItemRunner, Sendable {
    private let settings: BatchJobSettings
    private let all: [Client]
    /// The clients with no job in flight.
    private let idle: Mutex<[Client]>

    /// `curve`: keys for a coordinator that requires them.
    public init(
        endpoint: String, settings: BatchJobSettings, concurrency: Int, curve: CurveRole? = nil,
        logger: Logger = Logger(label: "client")
    ) throws {
        self.settings = settings
        let context = try ZMQContext()
        let clients = try (0..<max(concurrency, 1)).map { _ in
            try Client(context: context, endpoint: endpoint, curve: curve, logger: logger)
        }
        all = clients
        idle = Mutex(clients)
    }

    public func close() {
        for client in all { client.close() }
    }

    public func run(_ item: BatchItem, seed: UInt64) async -> ItemOutcome {
        let start = ContinuousClock.now
        var submit = settings.submitJob(question: item.question, seed: seed)
        do {
            if let image = item.image { submit.image = try image.load() }
        } catch {
            return ItemOutcome(
                item: item, seed: seed, config: settings.reported(seed: seed),
                failure: ClusterError(.badImage, "\(error)"), totalMs: milliseconds(since: start))
        }
        if let templates = settings.judgeTemplatesJSON { submit.judgeTemplatesJson = templates }
        submit.jobID = Self.jobID(submit)
        submit.recordSearch = settings.recordSearch
        // A bulk run's jobs outlive its process: a rerun submits the same ids and finds them done.
        submit.detached = true
        // The runner is given at most `concurrency` items at once, so a client is always free.
        guard let client = idle.withLock({ $0.popLast() }) else {
            return ItemOutcome(
                item: item, seed: seed, config: settings.reported(seed: seed),
                failure: ClusterError(.internal, "more items in flight than clients"), totalMs: 0)
        }
        defer { idle.withLock { $0.append(client) } }
        let result: Stagebeam_V1_JobResult
        do {
            let answer = try await withTimeout(settings.timeout) { [submit] in try await client.submit(submit) }
            if let answer {
                result = answer
            } else {
                let failure = ClusterError(
                    .deadlineExceeded,
                    "no result within \(settings.timeout!) (the job goes on at the coordinator; "
                        + "a rerun with --retry-failed picks it up)")
                result = Stagebeam_V1_JobResult(
                    jobID: submit.jobID, failure: failure, redispatched: 0, queueMs: 0, totalMs: milliseconds(since: start))
            }
        } catch let error as ClusterError {
            result = Stagebeam_V1_JobResult(
                jobID: submit.jobID, failure: error, redispatched: 0, queueMs: 0, totalMs: milliseconds(since: start))
        } catch {
            result = Stagebeam_V1_JobResult(
                jobID: submit.jobID, failure: ClusterError(.internal, "\(error)"), redispatched: 0, queueMs: 0,
                totalMs: milliseconds(since: start))
        }
        return ItemOutcome(
            item: item, seed: seed, config: Self.reported(result, settings: settings, seed: seed), result: result,
            includeSearch: settings.recordSearch)
    }

    /// "batch-" and 32 hex digits of the SHA-256 of the job's deterministic protobuf encoding.
    static func jobID(_ submit: Stagebeam_V1_SubmitJob) -> String {
        var core = submit
        core.jobID = ""
        core.recordSearch = false
        core.streamEvents = false
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        let bytes: [UInt8] = (try? core.serializedBytes(options: options)) ?? []
        return "batch-" + ContentHash.sha256Hex(bytes).prefix(32)
    }

    /// The configuration the coordinator ran the job with (it filled the fields the batch left unset).
    static func reported(_ result: Stagebeam_V1_JobResult, settings: BatchJobSettings, seed: UInt64) -> SearchConfig {
        guard result.hasSettings else { return settings.reported(seed: seed) }
        let config = SearchConfig(submit: result.settings)
        return (try? config.validated()) ?? config
    }

}
