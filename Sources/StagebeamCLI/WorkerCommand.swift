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
        abstract: "Serve generate, judge and/or reward requests for a coordinator with a model loaded once.")

    @Option(name: [.customLong("coordinator"), .customLong("connect")], help: "The coordinator's endpoint, e.g. tcp://10.0.0.1:5555.")
    var coordinator: String
    @OptionGroup var engine: EngineOptions
    @Option(help: "What to serve: generate, judge and/or reward (comma-separated).")
    var roles = "generate,judge"
    @Option(
        name: .customLong("reward-model"),
        help:
            "reward role: a reward model directory (LlamaForSequenceClassification, Qwen2ForSequenceClassification) that scores candidates instead of the --model's self-reward. With --roles reward alone, the policy --model is not loaded."
    )
    var rewardModel: String?
    @Option(
        name: .customLong("max-batch"),
        help:
            "Credits: the most sequences decoded at once; the coordinator never sends more (default: 8; with --backend openai, the llama.cpp server's slots)."
    )
    var maxBatch: Int?
    @OptionGroup var backend: BackendOptions
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
        if let maxBatch, maxBatch < 1 { throw ValidationError("--max-batch must be ≥ 1") }
        if heartbeatMs < 1 { throw ValidationError("--heartbeat-ms must be ≥ 1") }
        if liveness < 1 { throw ValidationError("--liveness must be ≥ 1") }
        _ = try parsedRoles()
    }

    func parsedRoles() throws -> [Stagebeam_V1_Role] {
        let roles = try self.roles.split(separator: ",").map { name -> Stagebeam_V1_Role in
            switch name.trimmingCharacters(in: .whitespaces) {
            case "generate": return .generate
            case "judge": return .judge
            case "reward": return .reward
            default: throw ValidationError("--roles takes generate, judge and/or reward, got '\(name)'")
            }
        }
        if roles.isEmpty { throw ValidationError("--roles needs at least one of generate, judge, reward") }
        if rewardModel != nil, !roles.contains(.reward) { throw ValidationError("--reward-model needs --roles with reward") }
        if Set(roles) == [.reward], rewardModel != nil, backend.kind == .openai {
            throw ValidationError(
                "a reward-only worker with --reward-model serves no policy model: --backend openai would have nothing to serve")
        }
        return Array(Set(roles)).sorted { $0.rawValue < $1.rawValue }
    }

    /// Whether this worker needs the policy model: for the generate and judge roles, and for the
    /// reward role without a reward model of its own (self-reward scores with the policy model).
    func needsPolicyModel(_ roles: [Stagebeam_V1_Role]) -> Bool {
        roles.contains { $0 != .reward } || rewardModel == nil
    }

    func run() async throws {
        try logging.bootstrap()
        let termination = TerminationSignals()
        let workerRoles = try parsedRoles()
        let id = workerID ?? "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        let log = Logger(label: "worker")
        var workerEngine: (any WorkerBackend)?
        if needsPolicyModel(workerRoles) {
            let model = try engine.loadModel()
            switch backend.kind {
            case .engine:
                workerEngine = try WorkerEngine(
                    model: model, generator: model.makeGenerator(kvCapacityTokens: engine.kvCapacity, kvCacheType: engine.kvCacheType),
                    chatTemplate: try engine.chatTemplate())
            case .openai:
                workerEngine = try await OpenAIBackend.connect(
                    configuration: try backend.configuration(slots: maxBatch), model: model, chatTemplate: try engine.chatTemplate())
            }
        } else if let policy = engine.model {
            log.notice(
                "policy model not loaded",
                metadata: [
                    "worker_id": "\(id)", "model": "\(policy)",
                    "reason": "a reward-only worker with --reward-model scores with the reward model alone"
                ])
        }
        let credits = maxBatch ?? (workerEngine as? OpenAIBackend)?.slots ?? 8
        var scorer: WorkerScorer?
        if workerRoles.contains(.reward) {
            if let rewardModel {
                scorer = try WorkerScorer(rewardModel: engine.loadRewardModel(rewardModel), url: URL(fileURLWithPath: rewardModel))
            } else if let server = workerEngine as? OpenAIBackend {
                // Self-reward on the server: the prompts are the engine's, the log-probabilities the server's.
                scorer = WorkerScorer(selfReward: server)
                log.notice(
                    "reward role by self-reward on the served model",
                    metadata: [
                        "worker_id": "\(id)", "model": "\(server.servedModel)",
                        "hint": "each candidate is one server call; --reward-model DIR scores with a separate checkpoint in this process"
                    ])
            } else if let local = workerEngine as? WorkerEngine {
                // Self-reward: the policy model scores, so a reward worker without --reward-model loads it.
                scorer = WorkerScorer(selfReward: local)
                log.notice(
                    "reward role by self-reward on the policy model",
                    metadata: [
                        "worker_id": "\(id)", "model": "\(local.modelName)",
                        "hint": "the policy model scores candidates, so it is loaded; --reward-model DIR scores with a separate checkpoint"
                    ])
            }
        }
        let worker = try Worker(
            context: ZMQContext(),
            configuration: .init(
                endpoint: coordinator, workerID: id, roles: workerRoles, maxBatch: credits,
                heartbeat: HeartbeatPolicy(interval: .milliseconds(heartbeatMs), missedLimit: liveness),
                curve: try curve.role()),
            engine: workerEngine, scorer: scorer)
        let metricsServer = try metricsOptions.serve(worker.metrics, ready: { worker.isConnected })
        announce(
            "worker \(id)" + (workerEngine.map { " · model \($0.modelName) \($0.modelHash)" } ?? " · no policy model")
                + " · roles \(roles) · max batch \(credits) · coordinator \(coordinator)"
                + (workerEngine.map { $0.backendDescription.isEmpty ? "" : " · backend \($0.backendDescription)" } ?? "")
                + (scorer.map { " · reward: \($0.description) \($0.modelHash)" } ?? "")
        )
        if let caveat = workerEngine?.determinismCaveat, !caveat.isEmpty {
            log.warning("answers may not repeat", metadata: ["worker_id": "\(id)", "caveat": "\(caveat)"])
        }
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

/// `stagebeam worker --backend openai`: an inference server serves the worker's requests.
struct BackendOptions: ParsableArguments {
    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case engine, openai
    }

    @Option(
        name: .customLong("backend"),
        help: "What serves requests: engine (stagebeam's own, in this process) or openai (an OpenAI-compatible server at --backend-url).")
    var kind: Kind = .engine
    @Option(
        name: .customLong("backend-url"),
        help:
            "The inference server's root URL, e.g. http://127.0.0.1:8080 (a trailing /v1 is accepted): llama.cpp's llama-server, vLLM, SGLang."
    )
    var url: String?
    @Option(name: .customLong("backend-model"), help: "The model name the server serves (default: the first of its /v1/models).")
    var servedModel: String?
    @Option(name: .customLong("api-key-file"), help: "A file holding the server's API key (sent as a Bearer token).")
    var apiKeyFile: String?
    @Option(
        name: .customLong("model-id"),
        help:
            "The model identity to announce instead of the derived one (served model name + the --model's digest); workers of one cluster must agree."
    )
    var modelID: String?
    @Option(name: .customLong("backend-timeout-s"), help: "The wait for a server answer to a request sent without a deadline.")
    var timeoutSeconds: Double = 300
    @Flag(
        name: .customLong("backend-deterministic"),
        help:
            "The server gives the same tokens for the same seed whatever runs beside (e.g. vLLM's batch-invariant mode): report no caveat.")
    var deterministic = false

    func validate() throws {
        if kind == .openai && url == nil { throw ValidationError("--backend openai needs --backend-url") }
        if kind == .engine && (url != nil || servedModel != nil || apiKeyFile != nil || modelID != nil || deterministic) {
            throw ValidationError(
                "--backend-url, --backend-model, --api-key-file, --model-id and --backend-deterministic need --backend openai")
        }
        if !(timeoutSeconds > 0) { throw ValidationError("--backend-timeout-s must be > 0") }
        if let modelID, modelID.isEmpty { throw ValidationError("--model-id must not be empty") }
    }

    func configuration(slots: Int?) throws -> OpenAIBackend.Configuration {
        let key = try apiKeyFile.map { try readText($0, what: "--api-key-file").trimmingCharacters(in: .whitespacesAndNewlines) }
        return OpenAIBackend.Configuration(
            url: url!, servedModel: servedModel, apiKey: key, modelID: modelID, slots: slots,
            timeout: .milliseconds(Int64(timeoutSeconds * 1000)), serverIsDeterministic: deterministic)
    }
}
