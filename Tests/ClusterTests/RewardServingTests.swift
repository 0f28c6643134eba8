import Cluster
import ClusterTestSupport
import Foundation
import Testing
import Transport
import Wire

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A reward worker as a real process behind a raw coordinator socket: reward requests that wait for
/// its engine together are scored in one batch, each candidate getting the very score it gets
/// alone; hostile requests get typed errors and it goes on serving. Self-reward on the policy
/// model, and a reward-only worker with a sequence-classification reward model, which never loads
/// the policy model.
@Suite(.serialized) struct RewardServingTests {
    @Test func selfRewardWorkerBatchesRequestsWithTheScoresTheyGetAlone() async throws {
        let served = try RewardWorker(name: "self", arguments: ["--model", LocalCluster.model])
        #expect(served.ready.rewardModelKind == .selfReward && served.ready.rewardScorer == "self-reward")
        #expect(served.ready.rewardModelName == "llama-gqa" && served.ready.rewardModelHash == served.ready.modelHash)
        // Self-reward needs the policy model, and the worker says why it loads it.
        #expect(served.worker.logged("reward role by self-reward on the policy model", ["model": "llama-gqa"]).count == 1)
        try await served.checkBatchingAndHostileInput()
    }

    @Test func rewardModelWorkerLoadsNoPolicyModelAndBatchesWithTheScoresTheyGetAlone() async throws {
        // A policy model that is not there: a reward-only worker with --reward-model never opens it.
        let served = try RewardWorker(
            name: "rm", arguments: ["--model", "/nonexistent/policy-model", "--reward-model", RewardClusterTests.rewardModel])
        #expect(served.ready.rewardModelKind == .sequenceClassification && served.ready.rewardScorer == "reward-model:llama")
        #expect(served.ready.rewardModelName == "llama")
        // The model it serves is the reward model: its identity stands for the worker's.
        #expect(served.ready.modelName == "llama" && served.ready.modelHash == served.ready.rewardModelHash)
        #expect(served.ready.recommendationsJson.isEmpty)
        #expect(!served.worker.logged("policy model not loaded", ["model": "/nonexistent/policy-model"]).isEmpty)
        try await served.checkBatchingAndHostileInput()
    }
}

/// A worker started with `--roles reward` against a raw ROUTER standing in for the coordinator.
private struct RewardWorker {
    let router: RawPeer
    /// Holds the worker's output files while it runs.
    let scratch: Scratch
    let worker: ChildProcess
    let ready: Stagebeam_V1_Ready
    let route: [[UInt8]]
    let codec = EnvelopeCodec()

    init(name: String, arguments: [String]) throws {
        scratch = try Scratch()
        router = try RawPeer(.router, context: try ZMQContext(), bind: "tcp://127.0.0.1:*")
        // The raw router answers heartbeats only while it waits for an answer: a liveness of 10 s
        // keeps a loaded machine's pauses between requests from making the worker reconnect.
        worker = try ChildProcess(
            [
                "worker", "--coordinator", try router.socket.lastEndpoint(), "--worker-id", name, "--roles", "reward", "--max-batch", "16",
                "--heartbeat-ms", "100", "--liveness", "100", "--log-format", "json", "--metrics-port", "0"
            ] + arguments, name: "worker-\(name)", in: scratch)
        guard let hello = try router.socket.receive(timeout: .seconds(20)), case .ready(let ready) = try EnvelopeCodec().decode(hello[1])
        else { throw ChildProcessError("expected Ready\n\(worker.stderr)") }
        self.ready = ready
        route = [hello[0]]
        #expect(ready.roles == [.reward] && ready.maxBatchSequences == 16)
    }

    /// A request of `candidates` candidates (continuing one prefix) for `question`.
    func request(_ id: String, question: String, candidates: [String], prefixes: [String] = ["<SUMMARY>"]) -> Stagebeam_V1_RewardRequest {
        var request = Stagebeam_V1_RewardRequest()
        request.requestID = id
        request.jobID = "job-\(id)"
        request.stage = .summary
        request.question = question
        request.assistantPrefixes = prefixes
        request.candidates = candidates.map { text in
            var candidate = Stagebeam_V1_RewardCandidate()
            candidate.text = text
            return candidate
        }
        request.verification = "Is this summary a good plan for the question? Answer yes or no."
        request.choices = ["yes", "no"]
        return request
    }

    func send(_ request: Stagebeam_V1_RewardRequest) throws {
        try router.socket.send(route + [codec.encode(.rewardRequest(request))])
    }

    func result() throws -> Stagebeam_V1_RewardResult {
        let (_, body) = try router.next()
        guard case .rewardResult(let result) = body else { throw ChildProcessError("expected a reward result, got \(body)") }
        return result
    }

    func checkBatchingAndHostileInput() async throws {
        // Other jobs' requests: other questions and candidates, of different lengths.
        let requests = [
            request("a", question: "How many wheels does a bicycle have?", candidates: ["Count the wheels.</SUMMARY>", "Two.</SUMMARY>"]),
            request("b", question: "What do bees make?", candidates: ["Name what bees produce in their hives.</SUMMARY>"]),
            request(
                "c", question: "Why is the sky blue?", candidates: ["Explain scattering.</SUMMARY>", "It is.</SUMMARY>", "Light.</SUMMARY>"]
            ),
            request("d", question: "What is two plus two?", candidates: ["Add the numbers.</SUMMARY>", "Four.</SUMMARY>"])
        ]
        // Each alone, one after another.
        var alone: [String: [Double]] = [:]
        for request in requests {
            try send(request)
            let answer = try result()
            #expect(answer.requestID == request.requestID && answer.batchRequests == 1 && answer.workerID == ready.workerID)
            #expect(answer.scores.count == request.candidates.count && answer.scores.allSatisfy(\.isFinite))
            #expect(answer.rewardModelHash == ready.rewardModelHash && answer.promptTokens > 0)
            alone[request.requestID] = answer.scores
        }
        // All at once: those that wait for the engine together are scored in one batch, each with
        // the same bits as alone. The first may start alone before the others arrive: tried a few times.
        var batched = 0
        for round in 0..<5 where batched == 0 {
            for request in requests {
                var again = request
                again.requestID = "\(request.requestID)\(round)"
                try send(again)
            }
            for _ in requests {
                let answer = try result()
                let id = String(answer.requestID.dropLast())
                #expect(answer.scores == alone[id], "request \(id) scored with \(answer.batchRequests - 1) other request(s)")
                if answer.batchRequests > 1 {
                    batched += 1
                    #expect(answer.batchCandidates > UInt32(answer.scores.count))
                }
            }
        }
        #expect(batched >= 2, "requests waiting together are scored in one batch")
        let batchedLines = worker.logged("work done", ["kind": "reward"]).filter { ($0["batch_requests"] as? Int ?? 0) > 1 }
        #expect(!batchedLines.isEmpty, "\(worker.stderr.suffix(2000))")

        // Hostile requests: typed errors naming the problem.
        var pastPrefixes = request("bad-prefix", question: "What do bees make?", candidates: ["Honey.</SUMMARY>", "Wax.</SUMMARY>"])
        pastPrefixes.candidates[1].prefixIndex = 3
        let refused = try router.error(after: route + [codec.encode(.rewardRequest(pastPrefixes))])
        #expect(refused.code == .invalidArgument && refused.requestID == "bad-prefix")
        #expect(refused.message.contains("candidate 1 names prefix 3") && refused.message.contains("1 prefix"), "\(refused.message)")
        let empty = try router.error(after: route + [codec.encode(.rewardRequest(request("empty", question: "Why?", candidates: [])))])
        #expect(empty.code == .invalidArgument && empty.message.contains("no candidates"), "\(empty.message)")
        var stageless = request("stageless", question: "Why?", candidates: ["Because.</SUMMARY>"])
        stageless.stage = .unspecified
        let noStage = try router.error(after: route + [codec.encode(.rewardRequest(stageless))])
        #expect(noStage.code == .invalidArgument && noStage.message.contains("names no stage"), "\(noStage.message)")
        var generate = Stagebeam_V1_GenerateRequest()
        generate.requestID = "gen"
        generate.n = 1
        generate.seeds = [1]
        let notServed = try router.error(after: route + [codec.encode(.generateRequest(generate))])
        #expect(notServed.code == .unexpectedMessage && notServed.message.contains("does not serve generate"), "\(notServed.message)")

        // It goes on serving, with the same scores.
        var last = requests[0]
        last.requestID = "after"
        try send(last)
        #expect(try result().scores == alone["a"])

        // A request stopped while it waits behind a long one is answered `cancelled` and counted as a
        // stopped reward request.
        let long = request(
            "long", question: "Describe every object.",
            candidates: (0..<14).map { "Plan \($0): " + String(repeating: "look at each object and note its shape and color, ", count: 6) })
        try send(long)
        try send(request("stopped", question: "What do bees make?", candidates: ["Honey.</SUMMARY>"]))
        var stop = Stagebeam_V1_StopRequests()
        stop.jobID = "job-stopped"
        stop.requestIds = ["stopped"]
        try router.socket.send(route + [codec.encode(.stopRequests(stop))])
        var answers: [String: Stagebeam_V1_Envelope.OneOf_Body] = [:]
        for _ in 0..<2 {
            let (_, body) = try router.next()
            switch body {
            case .rewardResult(let result): answers[result.requestID] = body
            case .error(let error): answers[error.requestID] = body
            default: throw ChildProcessError("unexpected \(body)")
            }
        }
        guard case .rewardResult = answers["long"], case .error(let cancelled) = answers["stopped"] else {
            throw ChildProcessError("expected the long request's scores and the stopped one's error: \(answers)")
        }
        #expect(cancelled.code == .cancelled)
        let metrics = try await scrape()
        #expect(metrics.contains("stagebeam_worker_requests_total{kind=\"reward\",outcome=\"stopped\"} 1\n"), "\(metrics)")
        #expect(!metrics.contains("kind=\"judge\""), "a reward worker labels its requests reward")
        let batches = try #require(sample(metrics, "stagebeam_worker_reward_batches_total"))
        let batchedRequests = try #require(sample(metrics, "stagebeam_worker_reward_batched_requests_total"))
        #expect(batchedRequests > batches, "requests scored together: \(batchedRequests) in \(batches) batches")
    }

    /// The worker's /metrics page.
    func scrape() async throws -> String {
        let url = try worker.wait("the metrics line") { child in
            child.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("http://") }.map(String.init)
        }
        let (data, _) = try await URLSession.shared.data(from: URL(string: url)!)
        return String(decoding: data, as: UTF8.self)
    }

    /// The value of an unlabelled series on a metrics page.
    func sample(_ page: String, _ name: String) -> Double? {
        page.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
    }
}
