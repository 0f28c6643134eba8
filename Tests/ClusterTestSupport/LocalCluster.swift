import Cluster
import Foundation
import Search
import Testing
import Wire

/// A coordinator and workers as real processes on loopback, with short heartbeats so that deaths
/// are noticed in a fraction of a second. They log JSON lines (`ChildProcess.logged`), with
/// `environment` added to their environment.
public final class LocalCluster {
    public static let heartbeatMs = "100"
    public static let model = Repo.model("llama-gqa")

    public let scratch: Scratch
    public let journal: String
    /// Heartbeat intervals of silence after which a peer is dead (coordinator and workers alike).
    public let liveness: String
    public let environment: [String: String]
    public private(set) var coordinator: ChildProcess!
    public private(set) var endpoint = ""
    public private(set) var workers: [String: ChildProcess] = [:]
    private var restarts = 0

    /// `coordinatorArguments` are added to the coordinator's command line.
    public init(
        scratch: Scratch, liveness: Int = 10, requestTimeoutS: Double = 20, environment: [String: String] = [:],
        coordinatorArguments: [String] = []
    ) throws {
        self.scratch = scratch
        self.liveness = String(liveness)
        self.environment = environment
        journal = scratch.path("journal.jsonl")
        try startCoordinator(endpoint: "tcp://127.0.0.1:*", extra: ["--request-timeout-s", String(requestTimeoutS)] + coordinatorArguments)
    }

    /// Starts a coordinator on `endpoint` (a `*` port: any free one) and the cluster's journal.
    public func startCoordinator(endpoint: String, extra: [String] = []) throws {
        restarts += 1
        coordinator = try ChildProcess(
            [
                "coordinator", "--bind", endpoint, "--journal", journal, "--heartbeat-ms", Self.heartbeatMs, "--liveness", liveness,
                "--no-worker-timeout-s", "20", "--log-format", "json"
            ] + extra,
            name: "coordinator\(restarts)", in: scratch, environment: environment)
        self.endpoint = try coordinator.wait("the listening line") { child in
            child.stdout.split(separator: " ").first { $0.hasPrefix("tcp://") }.map(String.init)
        }
    }

    /// Starts a worker and waits until the coordinator has registered it.
    @discardableResult
    public func addWorker(
        _ id: String, maxBatch: Int = 8, roles: String = "generate,judge", model: String = LocalCluster.model,
        extra: [String] = [], waitForRegistration: Bool = true
    ) throws -> ChildProcess {
        let worker = try ChildProcess(
            [
                "worker", "--coordinator", endpoint, "--model", model, "--worker-id", id, "--roles", roles,
                "--max-batch", String(maxBatch), "--heartbeat-ms", Self.heartbeatMs, "--liveness", liveness, "--log-format", "json"
            ] + extra,
            name: "worker-\(id)", in: scratch, environment: environment)
        workers[id] = worker
        if waitForRegistration {
            let before = registrations(of: id)
            try coordinator.wait("worker \(id) to register") { _ in registrations(of: id) > before ? true : nil }
        }
        return worker
    }

    /// How many times the current coordinator has registered worker `id`.
    public func registrations(of id: String) -> Int {
        coordinator.logged("worker registered", ["worker_id": id]).count
    }

    /// `stagebeam submit --json --record-search` for `job`; returns the parsed JSON output.
    public func submit(_ job: TestJob, jobID: String? = nil) throws -> [String: Any] {
        var arguments = ["submit", "--coordinator", endpoint, "--json", "--record-search"] + job.arguments
        if let jobID { arguments += ["--job-id", jobID] }
        let (status, out, err) = try runStagebeam(arguments, in: scratch, name: "submit-\(UUID().uuidString.prefix(6))")
        guard status == 0 else { throw ChildProcessError("submit exited \(status)\n\(err.suffix(3000))") }
        return try parseJSON(out)
    }
}

/// A question and search options, run on a cluster or in process.
public struct TestJob: Sendable {
    public var question: String
    public var beam: Int
    public var maxStageTokens: Int
    public var tournament: String
    public var seed: Int
    /// `logprob` or `generate`; nil: the default.
    public var judgeMode: String?
    /// A generate-mode verdict's budget; nil: the default.
    public var judgeMaxTokens: Int?
    /// The stages that get `beam` candidates (`--search-stages`); nil: the default (all four).
    public var searchStages: [Stage]?
    /// An image file the question is about (`--image`); nil: a text-only question.
    public var image: String?

    public init(
        question: String = "How many legs does a spider have?", beam: Int = 4, maxStageTokens: Int = 12,
        tournament: String = "bracket", seed: Int = 7, judgeMode: String? = nil, judgeMaxTokens: Int? = nil,
        searchStages: [Stage]? = nil, image: String? = nil
    ) {
        (self.question, self.beam, self.maxStageTokens, self.tournament, self.seed) = (question, beam, maxStageTokens, tournament, seed)
        (self.judgeMode, self.judgeMaxTokens, self.searchStages, self.image) = (judgeMode, judgeMaxTokens, searchStages, image)
    }

    public var arguments: [String] {
        var arguments = [
            "--question", question, "--beam", String(beam), "--max-stage-tokens", String(maxStageTokens),
            "--tournament", tournament, "--seed", String(seed)
        ]
        if let judgeMode { arguments += ["--judge-mode", judgeMode] }
        if let judgeMaxTokens { arguments += ["--judge-max-tokens", String(judgeMaxTokens)] }
        if let searchStages { arguments += ["--search-stages", searchStages.map(\.rawValue).joined(separator: ",")] }
        if let image { arguments += ["--image", image] }
        return arguments
    }

    /// The job as the wire carries it (what `stagebeam submit` sends for `arguments`), asking for
    /// the search record. Text jobs only: an image job goes through `LocalCluster.submit`.
    public func submitJob(id: String) -> Stagebeam_V1_SubmitJob {
        precondition(image == nil, "submitJob(id:) builds text jobs only")
        var config = SearchConfig()
        config.beam = beam
        config.maxStageTokens = maxStageTokens
        config.tournament = TournamentKind(rawValue: tournament)!
        config.seed = UInt64(seed)
        if let judgeMode { config.judgeMode = VerdictMode(rawValue: judgeMode)! }
        if let judgeMaxTokens { config.judgeMaxTokens = judgeMaxTokens }
        if let searchStages { config.searchStages = searchStages }
        var submit = config.submitJob(question: question)
        submit.jobID = id
        submit.recordSearch = true
        return submit
    }

    /// `stagebeam run --json`: the same search in one process.
    public func runInProcess(in scratch: Scratch, model: String = LocalCluster.model) throws -> [String: Any] {
        let (status, out, err) = try runStagebeam(
            ["run", "--model", model, "--json"] + arguments, in: scratch,
            name: "run-\(UUID().uuidString.prefix(6))")
        guard status == 0 else { throw ChildProcessError("run exited \(status)\n\(err.suffix(3000))") }
        return try parseJSON(out)
    }
}

public func parseJSON(_ text: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw ChildProcessError("not a JSON object: \(text.prefix(500))")
    }
    return object
}

/// What must not depend on where or how a search ran: the staged text, and per stage the winners
/// and every candidate's seed and text.
public struct SearchOutcome: Equatable, CustomStringConvertible, Sendable {
    public let text: String
    public let stages: [[String]]

    /// From a search record (`run --json`, or the "search" of `submit --json --record-search`).
    public init(record: [String: Any]) throws {
        guard let text = record["text"] as? String, let stages = record["stages"] as? [[String: Any]] else {
            throw ChildProcessError("not a search record: \(record.keys.sorted())")
        }
        self.text = text
        self.stages = stages.map { stage in
            let units = stage["units"] as? [[String: Any]] ?? []
            return units.flatMap { unit -> [String] in
                let candidates = (unit["candidates"] as? [[String: Any]] ?? []).map { "\($0["seed"] ?? "")|\($0["raw_text"] ?? "")" }
                return ["winner \(unit["winner"] ?? "")"] + candidates
            }
        }
    }

    public init(submitted: [String: Any]) throws {
        guard let search = submitted["search"] as? [String: Any] else {
            throw ChildProcessError("submit output has no search record: \(submitted.keys.sorted())")
        }
        try self.init(record: search)
    }

    public var description: String { "text: \(text.debugDescription)\nstages: \(stages)" }
}

/// The workers named in a search record's candidates.
public func candidateWorkers(_ submitted: [String: Any]) -> Set<String> {
    let stages = (submitted["search"] as? [String: Any])?["stages"] as? [[String: Any]] ?? []
    var workers = Set<String>()
    for stage in stages {
        for unit in stage["units"] as? [[String: Any]] ?? [] {
            for candidate in unit["candidates"] as? [[String: Any]] ?? [] {
                if let worker = candidate["worker"] as? String { workers.insert(worker) }
            }
        }
    }
    return workers
}

/// The sequence counts (n) of the generate requests a worker served.
public func generateSizes(_ worker: ChildProcess) -> [Int] {
    worker.logged("work done", ["kind": "generate"]).compactMap { $0["n"] as? Int }
}
