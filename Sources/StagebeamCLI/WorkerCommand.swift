import ArgumentParser
import Cluster
import Foundation
import Logging
import Transport
import Wire
import WorkerHost

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Serve generate and/or judge requests for a coordinator with a model loaded once.")

    @Option(name: [.customLong("coordinator"), .customLong("connect")], help: "The coordinator's endpoint, e.g. tcp://10.0.0.1:5555.")
    var coordinator: String
    @OptionGroup var engine: EngineOptions
    @Option(help: "What to serve: generate, judge, or both (comma-separated).")
    var roles = "generate,judge"
    @Option(name: .customLong("max-batch"), help: "Credits: the most sequences decoded at once; the coordinator never sends more.")
    var maxBatch = 8
    @Option(name: .customLong("worker-id"), help: "Unique worker id (default: host-pid).")
    var workerID: String?
    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval; use the coordinator's.")
    var heartbeatMs = 500
    @Option(help: "The coordinator is presumed dead after this many intervals of silence; then the worker reconnects.")
    var liveness = 3
    @OptionGroup var metricsOptions: MetricsOptions
    @OptionGroup var curve: ClientCurveOptions
    @OptionGroup var logging: LogOptions

    func validate() throws {
        if maxBatch < 1 { throw ValidationError("--max-batch must be ≥ 1") }
        if heartbeatMs < 1 { throw ValidationError("--heartbeat-ms must be ≥ 1") }
        if liveness < 1 { throw ValidationError("--liveness must be ≥ 1") }
        _ = try parsedRoles()
    }

    func parsedRoles() throws -> [Stagebeam_V1_Role] {
        let roles = try self.roles.split(separator: ",").map { name -> Stagebeam_V1_Role in
            switch name.trimmingCharacters(in: .whitespaces) {
            case "generate": return .generate
            case "judge": return .judge
            default: throw ValidationError("--roles takes generate and/or judge, got '\(name)'")
            }
        }
        if roles.isEmpty { throw ValidationError("--roles needs at least one of generate, judge") }
        return Array(Set(roles)).sorted { $0.rawValue < $1.rawValue }
    }

    func run() async throws {
        try logging.bootstrap()
        let termination = TerminationSignals()
        let model = try engine.loadModel()
        let workerEngine = try WorkerEngine(
            model: model, generator: model.makeGenerator(kvCapacityTokens: engine.kvCapacity), chatTemplate: try engine.chatTemplate())
        let id = workerID ?? "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        let worker = try Worker(
            context: ZMQContext(),
            configuration: .init(
                endpoint: coordinator, workerID: id, roles: try parsedRoles(), maxBatch: maxBatch,
                heartbeat: HeartbeatPolicy(interval: .milliseconds(heartbeatMs), missedLimit: liveness),
                curve: try curve.role()),
            engine: workerEngine)
        let metricsServer = try metricsOptions.serve(worker.metrics, ready: { worker.isConnected })
        announce(
            "worker \(id) · model \(workerEngine.modelName) \(workerEngine.modelHash) · roles \(roles) · max batch \(maxBatch) · coordinator \(coordinator)"
        )
        // Whichever comes first: a signal (leave politely) or the coordinator refusing this worker.
        let (outcomes, report) = AsyncStream.makeStream(of: Result<Int32, ClusterError>.self)
        Task { report.yield(.success(await termination.first())) }
        Task { report.yield(.failure(await worker.waitUntilRefused())) }
        var iterator = outcomes.makeAsyncIterator()
        let outcome = await iterator.next() ?? .success(0)
        let reason: String
        switch outcome {
        case .success(let signal): reason = "signal \(signal)"
        case .failure(let refusal): reason = "refused: \(refusal)"
        }
        Logger(label: "worker").notice("stopping", metadata: ["worker_id": "\(id)", "reason": "\(reason)"])
        metricsServer?.close()
        worker.close(reason: reason)
        guard case .failure(let refusal) = outcome else { Foundation.exit(0) }
        throw ExitCode(refusal.code == .modelMismatch ? Self.modelRefusedStatus : Self.configurationRefusedStatus)
    }

    /// Refused for serving another model than the cluster's: EX_TEMPFAIL, which the systemd unit
    /// restarts after its delay (the cluster's model may change when its workers go, or the model
    /// on disk may be replaced).
    static let modelRefusedStatus: Int32 = 75
    /// Refused for its settings (e.g. no usable role): restarting the same command cannot help, and
    /// the unit does not (`RestartPreventExitStatus=2`).
    static let configurationRefusedStatus: Int32 = 2
}
