import ArgumentParser
import Cluster
import Foundation
import Jobs
import Transport
import Wire

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a coordinator's workers (credits, in flight), queue and jobs.")

    @Option(help: "The coordinator's endpoint, e.g. tcp://127.0.0.1:5555.")
    var coordinator: String
    @OptionGroup var curve: ClientCurveOptions
    @OptionGroup var logging: LogOptions
    @Option(name: .customLong("timeout-s"), help: "Give up when the coordinator does not answer within this many seconds.")
    var timeoutS = 5.0
    @Flag(help: "Print the status as JSON (the StatusReply message's protobuf JSON form).")
    var json = false

    func run() async throws {
        try logging.bootstrap()
        let client = try Client(context: ZMQContext(), endpoint: coordinator, curve: try curve.role())
        let status = try await withTimeout(.milliseconds(Int64(timeoutS * 1000))) { try await client.status() }
        client.close()
        guard let status else {
            printError(ConnectOptions.silence(from: coordinator, within: timeoutS, curve: try curve.role()))
            throw ExitCode(3)
        }
        if json {
            print(try status.jsonText())
            return
        }
        print(
            String(
                format:
                    "protocol %d · %d worker(s) · utilisation %.0f%% · %d queued · %d running · %d finished · %d requests waiting · %d re-dispatched",
                status.protocolVersion, status.workers.count, status.utilisation * 100, status.queueDepth,
                status.runningJobs, status.finishedJobs, status.pendingRequests, status.redispatchedRequests))
        for worker in status.workers {
            let roles = worker.roles.map(\.logName).joined(separator: ",")
            print(
                String(
                    format:
                        "  worker %@ · %@ · %@ · credits %d/%d · in flight %d · largest request %d · done %d · re-dispatched %d · busy %.0f%%",
                    worker.workerID, worker.modelName, roles, worker.creditsAvailable, worker.maxBatchSequences,
                    worker.inFlightSequences, worker.largestRequestSequences, worker.requestsCompleted,
                    worker.requestsRedispatched, worker.utilisation * 100))
            if worker.roles.contains(.reward) { print("    reward model: \(rewardModel(worker))") }
        }
        for job in status.jobs {
            let stage = job.state == "running" ? " · \(stageName(job.stage))" : ""
            let error = job.error.isEmpty ? "" : " · \(job.error)"
            print("  job \(job.jobID) · \(job.state)\(stage) · \(job.redispatchedRequests) re-dispatched\(error)")
        }
    }
}

/// A reward worker's reward model as `status` prints it: which checkpoint, and whether it is the
/// policy model itself.
func rewardModel(_ worker: Stagebeam_V1_WorkerStatus) -> String {
    let identity = worker.rewardModelHash.isEmpty ? "" : " (\(worker.rewardModelHash.prefix(12)))"
    switch worker.rewardModelKind {
    case .selfReward: return "self-reward on the policy model \(worker.rewardModelName)\(identity)"
    case .sequenceClassification: return "sequence-classification checkpoint \(worker.rewardModelName)\(identity)"
    default: return "\(worker.rewardScorer)\(identity)" // a worker older than reward_model_kind
    }
}
