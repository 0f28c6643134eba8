import Cluster
import ClusterTestSupport
import Foundation
import Search
import Testing
import Transport
import Wire

/// The reward-scored methods (`stage-beam`, `swires`) on a cluster of real processes: reward workers
/// score candidates as `stagebeam run`'s scorer does, so a job gives the answer — and every score,
/// survivor and retrace — that it gives in one process, however many workers share it, after a
/// worker is killed in the middle, and after its coordinator is killed and restarted.
@Suite(.serialized) struct RewardClusterTests {
    static let rewardModel = Repo.root.appendingPathComponent("Tests/Fixtures/reward/llama").path
    static let otherRewardModel = Repo.root.appendingPathComponent("Tests/Fixtures/reward/qwen2").path

    /// stage-beam M 4 N 2, and swires M 4 N 2 with a threshold the tiny model's self-reward never
    /// reaches, so that it retraces its whole budget.
    static let stageBeam = RewardJob(method: "stage-beam", question: "How many wheels does a bicycle have?", seed: 4)
    static let swires = RewardJob(
        method: "swires", question: "What do bees make?", seed: 8, extra: ["--retraces", "2", "--reward-mean", "40", "--reward-std", "1"])

    @Test func stageBeamAndSwiresOnOneAndThreeWorkersGiveTheInProcessAnswer() throws {
        let scratch = try Scratch()
        let single = try LocalCluster(scratch: scratch)
        try single.addWorker("solo", maxBatch: 8, roles: "generate,judge,reward")
        // Three workers of 1 credit each: a stage's 4 candidates are generated and scored 1 + 1 + 1, the fourth once a credit is back.
        let (_, statusText, _) = try runStagebeam(["status", "--coordinator", single.endpoint], in: scratch, name: "status")
        #expect(statusText.contains("reward model: self-reward on the policy model llama-gqa"), "\(statusText)")
        let triple = try LocalCluster(scratch: Scratch())
        for id in ["w1", "w2", "w3"] { try triple.addWorker(id, maxBatch: 1, roles: "generate,reward") }

        for job in [Self.stageBeam, Self.swires] {
            let reference = try RewardOutcome(record: job.runInProcess(in: scratch))
            let one = try single.submit(job)
            let three = try triple.submit(job)
            #expect(one["status"] as? String == "succeeded", "\(one["error"] ?? "")")
            #expect(try RewardOutcome(submitted: one) == reference, "\(job.method) on one worker")
            #expect(try RewardOutcome(submitted: three) == reference, "\(job.method) on three workers")
            #expect(candidateWorkers(three) == ["w1", "w2", "w3"])
            let counts = three["counts"] as? [String: Any]
            #expect(counts?["score_calls"] as? Int == reference.scoreCalls)
            #expect(three["reward_model_hash"] as? String == one["reward_model_hash"] as? String)
        }
        #expect(try RewardOutcome(record: Self.swires.runInProcess(in: scratch)).retraces == 2, "the threshold is out of reach")

        // A job's own self-reward wording reaches the reward workers: other scores, those of `run` with the same file.
        let templates = scratch.path("reward-templates.json")
        try defaultRewardTemplatesJSON.replacingOccurrences(of: "Answer yes or no.", with: "Reply with yes or no only.")
            .write(toFile: templates, atomically: true, encoding: .utf8)
        var worded = Self.stageBeam
        worded.extra = ["--reward-templates", templates]
        let wordedReference = try RewardOutcome(record: worded.runInProcess(in: scratch))
        #expect(try RewardOutcome(submitted: single.submit(worded)) == wordedReference)
        #expect(wordedReference.stages != (try RewardOutcome(record: Self.stageBeam.runInProcess(in: scratch))).stages, "other scores")
        for id in ["w1", "w2", "w3"] {
            let sizes = triple.workers[id]!.logged("work done", ["kind": "reward"]).compactMap { $0["n"] as? Int }
            #expect(!sizes.isEmpty && sizes.allSatisfy { $0 == 1 }, "\(id): \(sizes)")
        }
    }

    /// A reward worker frozen (SIGSTOP) before the job, then SIGKILLed while its share of a scorer
    /// call is in flight: the share is scored again on the other reward worker, to the same answer.
    /// (Frozen first because the tiny model scores in milliseconds: too fast to kill a worker in the
    /// middle of a request by timing.)
    @Test func killedRewardWorkersShareIsRedispatchedWithTheSameAnswer() async throws {
        let scratch = try Scratch()
        // Debug lines say where each request goes. Liveness of 60 s: the frozen victim must still count
        // as alive when the job's first scorer call goes out, on a loaded machine too; its share then
        // goes elsewhere at the 4 s request deadline.
        let cluster = try LocalCluster(
            scratch: scratch, liveness: 600, requestTimeoutS: 4, coordinatorArguments: ["--log-level", "debug"])
        try cluster.addWorker("gen", maxBatch: 4, roles: "generate")
        let victim = try cluster.addWorker("victim", maxBatch: 2, roles: "reward")
        try cluster.addWorker("survivor", maxBatch: 2, roles: "reward")
        let job = Self.swires
        let reference = try RewardOutcome(record: job.runInProcess(in: scratch))

        let client = try Client(context: ZMQContext(), endpoint: cluster.endpoint)
        defer { client.close() }
        victim.signal(SIGSTOP)
        async let finished = client.submit(job.submitJob(id: "reward-kill"))
        try await cluster.coordinator.arriving("a reward request to reach the frozen worker", timeout: 60) { child in
            child.logged("request sent", ["kind": "reward", "worker_id": "victim"]).isEmpty ? nil : true
        }
        victim.signal(SIGKILL)
        let result = try await finished

        #expect(result.status == .succeeded, "\(result.error)")
        let record = try parseJSON(String(decoding: result.searchRecordJson, as: UTF8.self))
        #expect(try RewardOutcome(record: record) == reference)
        #expect(result.counts.redispatchedRequests >= 1)
        #expect(victim.logged("work done").isEmpty, "the frozen victim never answered")
    }

    /// A coordinator SIGKILLed in the middle of a swires job and restarted on its journal takes the
    /// answers it had (generated candidates and scores) from the journal and finishes the job with
    /// the in-process answer, for the client that waited through the restart.
    @Test func restartedCoordinatorFinishesTheJobWithTheSameAnswer() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        let a = try cluster.addWorker("a", maxBatch: 8, roles: "generate,reward")
        let b = try cluster.addWorker("b", maxBatch: 8, roles: "generate,reward")
        let job = RewardJob(
            method: "swires", question: "Why do leaves fall?", seed: 12, maxStageTokens: 24,
            extra: ["--retraces", "2", "--reward-mean", "40", "--reward-std", "1"])
        let reference = try job.runInProcess(in: scratch)
        try cluster.restartCoordinatorMidJob(
            "reward-resumed", arguments: job.arguments, pausing: [a, b], answer: reference["answer"] as? String,
            scratch: scratch, minimumSteps: 4, "summary and caption: one generate and one score call each, at least")
        #expect(try RewardOutcome(submitted: cluster.submit(job, jobID: "reward-resumed")) == RewardOutcome(record: reference))
    }

    /// A reward worker serving a sequence-classification reward model scores as `run --reward-model`
    /// does; a reward worker of another reward model is refused while it is registered.
    @Test func rewardModelWorkerScoresAsTheInProcessRewardModel() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("gen", maxBatch: 4, roles: "generate")
        try cluster.addWorker("rm", maxBatch: 4, roles: "reward", extra: ["--reward-model", Self.rewardModel])
        let job = Self.stageBeam
        let submitted = try cluster.submit(job)
        #expect(submitted["status"] as? String == "succeeded", "\(submitted["error"] ?? "")")
        let reference = try job.runInProcess(in: scratch, extra: ["--reward-model", Self.rewardModel])
        #expect(try RewardOutcome(submitted: submitted) == RewardOutcome(record: reference))
        let identity = try #require(submitted["reward_model_hash"] as? String)
        #expect(cluster.coordinator.logged("worker registered", ["worker_id": "rm", "reward_scorer": "reward-model:llama"]).count == 1)
        // A reward-only worker with a reward model of its own never loads the policy model.
        #expect(cluster.workers["rm"]!.logged("policy model not loaded").count == 1)

        // Status names each reward worker's reward model and its kind.
        let (statusCode, statusText, _) = try runStagebeam(["status", "--coordinator", cluster.endpoint], in: scratch, name: "status")
        #expect(statusCode == 0)
        #expect(statusText.contains("reward model: sequence-classification checkpoint llama (\(identity.prefix(12)))"), "\(statusText)")
        let (_, statusJSON, _) = try runStagebeam(["status", "--coordinator", cluster.endpoint, "--json"], in: scratch, name: "status-json")
        let workers = try parseJSON(statusJSON)["workers"] as? [[String: Any]] ?? []
        let rm = workers.first { $0["workerId"] as? String == "rm" }
        #expect(rm?["rewardModelKind"] as? String == "REWARD_MODEL_KIND_SEQUENCE_CLASSIFICATION", "\(statusJSON)")
        #expect(rm?["rewardModelHash"] as? String == identity && rm?["rewardModelName"] as? String == "llama")
        #expect(workers.first { $0["workerId"] as? String == "gen" }?["rewardModelKind"] == nil, "no reward role, no reward model")

        let other = try cluster.addWorker(
            "rm-other", roles: "reward", extra: ["--reward-model", Self.otherRewardModel], waitForRegistration: false)
        #expect(try other.exitStatus() == 75, "refused for its reward model")
        #expect(other.stderr.contains("every reward worker must serve the same reward model"), "\(other.stderr.suffix(1000))")
        #expect(!identity.isEmpty)
    }

    /// The rule for a missing role: a scored job waits `--no-worker-timeout-s` for a reward worker,
    /// then fails with `no_worker`, naming the role and how to start one.
    @Test func scoredJobWithoutRewardWorkerFailsWithNoWorker() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch, coordinatorArguments: ["--no-worker-timeout-s", "1"])
        try cluster.addWorker("gen", maxBatch: 4, roles: "generate,judge")
        let (status, out, _) = try runStagebeam(
            ["submit", "--coordinator", cluster.endpoint, "--json"] + Self.stageBeam.arguments, in: scratch, name: "submit-no-reward")
        #expect(status == 1)
        let result = try parseJSON(out)
        let error = result["error"] as? [String: Any]
        #expect(error?["code"] as? String == "no_worker", "\(result)")
        let message = error?["message"] as? String ?? ""
        #expect(message.contains("no live reward worker") && message.contains("--roles including reward"), "\(message)")
    }
}

/// A question and reward-search options, run on a cluster or in process.
struct RewardJob {
    var method: String
    var question: String
    var seed: Int
    var maxStageTokens = 12
    var extra: [String] = []

    var arguments: [String] {
        [
            "--question", question, "--method", method, "--candidates", "4", "--keep", "2", "--max-stage-tokens", String(maxStageTokens),
            "--seed", String(seed)
        ] + extra
    }

    /// `stagebeam run --json`: the same search in one process.
    func runInProcess(in scratch: Scratch, extra: [String] = []) throws -> [String: Any] {
        let (status, out, err) = try runStagebeam(
            ["run", "--model", LocalCluster.model, "--json"] + arguments + extra, in: scratch, name: "run-\(UUID().uuidString.prefix(6))")
        guard status == 0 else { throw ChildProcessError("run exited \(status)\n\(err.suffix(3000))") }
        return try parseJSON(out)
    }

    /// What `stagebeam submit` sends for `arguments`, asking for the search record.
    func submitJob(id: String) -> Stagebeam_V1_SubmitJob {
        var submit = Stagebeam_V1_SubmitJob()
        submit.jobID = id
        submit.question = question
        submit.method = method == "swires" ? .swires : .stageBeam
        submit.candidates = 4
        submit.keep = 2
        submit.maxStageTokens = UInt32(maxStageTokens)
        submit.seed = UInt64(seed)
        submit.recordSearch = true
        var index = 0
        while index + 1 < extra.count {
            let value = extra[index + 1]
            switch extra[index] {
            case "--retraces": submit.retraces = UInt32(value)!
            case "--reward-mean": submit.rewardDistribution.mean = Double(value)!
            case "--reward-std": submit.rewardDistribution.std = Double(value)!
            default: break
            }
            index += 2
        }
        return submit
    }
}

extension LocalCluster {
    func submit(_ job: RewardJob, jobID: String? = nil) throws -> [String: Any] {
        var arguments = ["submit", "--coordinator", endpoint, "--json", "--record-search"] + job.arguments
        if let jobID { arguments += ["--job-id", jobID] }
        let (status, out, err) = try runStagebeam(arguments, in: scratch, name: "submit-\(UUID().uuidString.prefix(6))")
        guard status == 0 else { throw ChildProcessError("submit exited \(status)\n\(err.suffix(3000))") }
        return try parseJSON(out)
    }
}

/// What must not depend on where a reward search ran: the staged text, every candidate (seed and
/// text), every score, parent and survivor of every stage, and every retrace.
struct RewardOutcome: Equatable, CustomStringConvertible {
    let outcome: SearchOutcome
    let stages: [String]
    let retraces: Int
    let retraceRecords: String
    let scoreCalls: Int

    init(record: [String: Any]) throws {
        outcome = try SearchOutcome(record: record)
        stages = (record["stages"] as? [[String: Any]] ?? []).map { stage in
            let unit = (stage["units"] as? [[String: Any]])?.first ?? [:]
            return "scores \(unit["scores"] ?? "-") parents \(unit["parents"] ?? "-") survivors \(unit["survivors"] ?? "-")"
        }
        let reward = record["reward"] as? [String: Any] ?? [:]
        let retraceList = reward["retraces"] as? [[String: Any]] ?? []
        retraces = retraceList.count
        retraceRecords = String(decoding: try JSONSerialization.data(withJSONObject: retraceList, options: [.sortedKeys]), as: UTF8.self)
        scoreCalls = (record["counts"] as? [String: Any])?["score_calls"] as? Int ?? -1
    }

    init(submitted: [String: Any]) throws {
        guard let search = submitted["search"] as? [String: Any] else {
            throw ChildProcessError("submit output has no search record: \(submitted.keys.sorted())")
        }
        try self.init(record: search)
    }

    var description: String { "\(outcome)\n\(stages.joined(separator: "\n"))\nretraces: \(retraceRecords)" }
}
