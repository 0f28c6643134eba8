import ArgumentParser
import Cluster
import Dispatch
import Foundation
import Logging
import Search
import Transport

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the cluster's coordinator: workers register with it, clients submit jobs to it.")

    @Option(name: [.customLong("bind"), .customLong("listen")], help: "Endpoint to listen on (tcp://0.0.0.0:5555; port * = any free port).")
    var bind = "tcp://127.0.0.1:5555"
    @Option(help: "Journal file (JSON lines), or a directory to keep journal.jsonl in. Jobs survive restarts through it.")
    var journal: String
    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval the coordinator expects from workers.")
    var heartbeatMs = 500
    @Option(help: "A worker is dead after this many heartbeat intervals without a message.")
    var liveness = 3
    @Option(name: .customLong("request-timeout-s"), help: "Seconds a request may be in flight before it is sent to another worker.")
    var requestTimeoutS = 60.0
    @Option(name: .customLong("no-worker-timeout-s"), help: "Seconds a job's work waits with no worker of its role before the job fails.")
    var noWorkerTimeoutS = 60.0
    @Option(
        name: .customLong("client-timeout-s"),
        help:
            "Seconds without a message from a client waiting for a job after which it counts as gone (its jobs not submitted detached are cancelled)."
    )
    var clientTimeoutS = 10.0
    @Option(name: .customLong("max-running-jobs"), help: "Jobs searched at once; later ones queue.")
    var maxRunningJobs = 8
    @Option(
        name: .customLong("max-queued-jobs"),
        help: "Jobs accepted and not finished at most (running and queued); more submissions are refused with overloaded.")
    var maxQueuedJobs = 1024
    @Option(
        name: .customLong("max-queued-image-bytes"),
        help: "The images of unfinished jobs together at most (bytes); more submissions are refused with overloaded.")
    var maxQueuedImageBytes = 1 << 30
    @Option(
        name: .customLong("max-image-bytes"), help: "Largest image a job may carry (bytes); larger ones are refused with image_too_large.")
    var maxImageBytes = 32 << 20
    @Option(
        name: .customLong("journal-retain"),
        help: "Drop finished jobs older than this from the journal (e.g. 7d, 12h, 30m); unfinished jobs are always kept. Default: keep all."
    )
    var journalRetain: String?
    @Option(
        help: ArgumentHelp(
            "Pin the cluster's model: the model directory (or file) every worker must serve; workers of another model are refused.",
            discussion: "Without --model or --model-id, each role's first worker decides, until no worker of its model remains."))
    var model: String?
    @Option(name: .customLong("chat-template"), help: "With --model: the chat template file the workers pass as --chat-template.")
    var chatTemplate: String?
    @Option(name: .customLong("model-id"), help: "Pin the cluster's model by its identity (64 hex digits, as a worker prints it).")
    var modelID: String?
    @Option(
        name: .customLong("refusal-log-interval-s"),
        help: "Refused frames and connections are logged once per peer per this many seconds, with a count of the rest.")
    var refusalLogIntervalS = 10.0
    @OptionGroup var metricsOptions: MetricsOptions
    @OptionGroup var curve: CoordinatorCurveOptions
    @OptionGroup var logging: LogOptions

    func validate() throws {
        if heartbeatMs < 1 { throw ValidationError("--heartbeat-ms must be ≥ 1") }
        if liveness < 1 { throw ValidationError("--liveness must be ≥ 1") }
        if !(requestTimeoutS > 0) { throw ValidationError("--request-timeout-s must be > 0") }
        if !(noWorkerTimeoutS > 0) { throw ValidationError("--no-worker-timeout-s must be > 0") }
        if !(clientTimeoutS > 0) { throw ValidationError("--client-timeout-s must be > 0") }
        if maxRunningJobs < 1 { throw ValidationError("--max-running-jobs must be ≥ 1") }
        if maxImageBytes < 1 { throw ValidationError("--max-image-bytes must be ≥ 1") }
        if maxQueuedJobs < 1 { throw ValidationError("--max-queued-jobs must be ≥ 1") }
        if maxQueuedImageBytes < maxImageBytes {
            throw ValidationError("--max-queued-image-bytes must be at least --max-image-bytes (\(maxImageBytes))")
        }
        if let journalRetain, RetentionPeriod.parse(journalRetain) == nil {
            throw ValidationError("--journal-retain '\(journalRetain)' is not a period such as 7d, 12h, 30m or 90s")
        }
        if !(refusalLogIntervalS > 0) { throw ValidationError("--refusal-log-interval-s must be > 0") }
        if model != nil, modelID != nil { throw ValidationError("give --model or --model-id, not both") }
        if chatTemplate != nil, model == nil { throw ValidationError("--chat-template goes with --model") }
        if let modelID, modelID.count != 64 || !modelID.allSatisfy(\.isHexDigit) {
            throw ValidationError("--model-id takes a model identity: 64 hexadecimal digits, got '\(modelID)'")
        }
    }

    /// The model identity the operator pinned, if any.
    func pinnedModel() throws -> String? {
        if let modelID { return modelID.lowercased() }
        guard let model else { return nil }
        let template = try chatTemplate.map { try readText($0, what: "--chat-template") }
        return try ModelIdentity.compute(model: URL(fileURLWithPath: model), chatTemplate: template)
    }

    func run() async throws {
        try logging.bootstrap()
        let termination = TerminationSignals()
        let logger = Logger(label: "coordinator")
        var isDirectory: ObjCBool = false
        var journalURL = URL(fileURLWithPath: journal)
        if FileManager.default.fileExists(atPath: journal, isDirectory: &isDirectory), isDirectory.boolValue {
            journalURL.appendPathComponent("journal.jsonl")
        }
        let pinned = try pinnedModel()
        let coordinator = try Coordinator(
            context: ZMQContext(),
            configuration: .init(
                endpoint: bind, journal: journalURL,
                heartbeat: HeartbeatPolicy(interval: .milliseconds(heartbeatMs), missedLimit: liveness),
                requestTimeout: .milliseconds(Int64(requestTimeoutS * 1000)),
                noWorkerWait: .milliseconds(Int64(noWorkerTimeoutS * 1000)), maxRunningJobs: maxRunningJobs,
                maxQueuedJobs: maxQueuedJobs, maxQueuedImageBytes: maxQueuedImageBytes,
                maxImageBytes: maxImageBytes, curve: try curve.settings(), journalRetain: journalRetain.flatMap(RetentionPeriod.parse),
                pinnedModel: pinned, pinnedRecommendations: try model.map { try ModelRecommendations(model: URL(fileURLWithPath: $0)) },
                refusalLogInterval: .milliseconds(Int64(refusalLogIntervalS * 1000)),
                clientTimeout: .milliseconds(Int64(clientTimeoutS * 1000))),
            logger: logger)
        announce(
            "coordinator listening on \(coordinator.endpoint) · journal \(journalURL.path)"
                + (pinned.map { " · model \($0)" } ?? " · model: the first worker's"))
        logger.info("started", metadata: ["endpoint": "\(coordinator.endpoint)", "journal": "\(journalURL.path)"])
        let metricsServer = try metricsOptions.serve(coordinator.metrics)
        let signal = await termination.first()
        logger.notice("stopping", metadata: ["signal": .stringConvertible(signal)])
        metricsServer?.close()
        coordinator.close()
    }
}

/// A line on standard output, written at once (not held in a buffer while the process runs on), so
/// that scripts and tests starting the process can wait for it.
func announce(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
