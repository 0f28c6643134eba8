import ClusterTestSupport
import Foundation
import Testing

/// A coordinator and a `worker --backend openai` as real processes, the worker driving the
/// in-process fake server over HTTP.
@Suite(.serialized) struct ServerBackedClusterTests {
    /// A job runs through the server; a server slower than the coordinator's liveness window does
    /// not get the worker declared dead (it heartbeats while requests are in flight); a worker on
    /// stagebeam's own engine with the same model file is refused (another backend, another identity).
    @Test func jobRunsThroughTheServerAndTheWorkerKeepsBeating() async throws {
        let fixture = try OpenAIBackendTests.fixture()
        let server = FakeInferenceServer(tokenizer: fixture.model.tokenizer, eosToken: fixture.eos, slots: 1)
        let (port, task) = try await server.start()
        defer { task.cancel() }
        let scratch = try Scratch()
        // 100 ms heartbeats, dead after 5 silent intervals: 0.5 s.
        let cluster = try LocalCluster(scratch: scratch, liveness: 5)
        let gguf = OpenAIBackendTests.gguf.path
        let worker = try cluster.addWorker(
            "served", maxBatch: 2, model: gguf, extra: ["--backend", "openai", "--backend-url", "http://127.0.0.1:\(port)"])
        // Every answer of the first few takes twice the liveness window.
        for _ in 0..<3 { server.inject(.slow(.milliseconds(1000))) }

        let submitted = try cluster.submit(TestJob(beam: 2, maxStageTokens: 8))
        #expect(submitted["status"] as? String == "succeeded", "\(worker.stderr.suffix(3000))")
        let counts = submitted["counts"] as? [String: Any]
        #expect(counts?["redispatched_requests"] as? Int == 0)
        // One slot: llama.cpp's server promises the same tokens for the same seeds.
        #expect((submitted["determinism_caveats"] as? [String])?.isEmpty == true)
        #expect(cluster.registrations(of: "served") == 1)
        #expect(server.received.allSatisfy { $0["cache_prompt"] as? Bool == false })

        // The same job again: the same answer.
        let again = try cluster.submit(TestJob(beam: 2, maxStageTokens: 8))
        #expect(again["answer"] as? String == submitted["answer"] as? String)

        let stranger = try cluster.addWorker("engine", model: gguf, waitForRegistration: false)
        #expect(try stranger.exitStatus() == 75)
        #expect(stranger.stderr.contains("model") == true)
    }

    /// With several slots the job result says its answer may not repeat.
    @Test func aBatchingServerIsReportedInTheJobResult() async throws {
        let fixture = try OpenAIBackendTests.fixture()
        let server = FakeInferenceServer(tokenizer: fixture.model.tokenizer, eosToken: fixture.eos, slots: 4)
        let (port, task) = try await server.start()
        defer { task.cancel() }
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker(
            "batching", maxBatch: 4, model: OpenAIBackendTests.gguf.path,
            extra: ["--backend", "openai", "--backend-url", "http://127.0.0.1:\(port)"])
        let submitted = try cluster.submit(TestJob(beam: 2, maxStageTokens: 6))
        #expect(submitted["status"] as? String == "succeeded")
        let caveats = submitted["determinism_caveats"] as? [String] ?? []
        #expect(caveats.count == 1)
        #expect(caveats.first?.contains("4 slots") == true)
    }

    /// The reward role through the server: a stage-beam job on `worker --backend openai --roles
    /// generate,reward` is scored by self-reward calls to the server (one token, log-probabilities).
    @Test func stageBeamIsScoredThroughTheServer() async throws {
        let fixture = try OpenAIBackendTests.fixture()
        let server = FakeInferenceServer(tokenizer: fixture.model.tokenizer, eosToken: fixture.eos, slots: 2)
        let (port, task) = try await server.start()
        defer { task.cancel() }
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        let worker = try cluster.addWorker(
            "served", maxBatch: 2, roles: "generate,reward", model: OpenAIBackendTests.gguf.path,
            extra: ["--backend", "openai", "--backend-url", "http://127.0.0.1:\(port)"])
        let (status, out, err) = try runStagebeam(
            [
                "submit", "--coordinator", cluster.endpoint, "--json", "--question", "How many legs does a spider have?", "--method",
                "stage-beam", "--candidates", "2", "--keep", "1", "--max-stage-tokens", "6", "--seed", "3"
            ], in: scratch, name: "submit-stage-beam")
        #expect(status == 0, "\(err.suffix(2000))")
        let submitted = try parseJSON(out)
        #expect(submitted["status"] as? String == "succeeded", "\(submitted["error"] ?? "") \(worker.stderr.suffix(3000))")
        #expect(((submitted["counts"] as? [String: Any])?["score_calls"] as? Int ?? 0) > 0)
        // Only self-reward asks for one token with 20 top log-probabilities here (no judge role).
        #expect(server.received.contains { $0["n_predict"] as? Int == 1 && $0["n_probs"] as? Int == 20 })
        #expect(worker.stderr.contains("reward role by self-reward on the served model"))
    }
}
