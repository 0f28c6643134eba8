import ClusterTestSupport
import Foundation
import Testing
import Transport
import Wire

extension ClusterProcessTests {
    /// A peer that announces a made-up model and goes away does not lock the cluster: once it is
    /// dropped, no worker of its model remains, the choice is forgotten, and a real worker registers.
    /// Jobs' `StageStarted` events carry N.
    @Test func aPeerThatClaimsAnotherModelAndLeavesLocksNothing() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        do {
            let squatter = try RawPeer(.dealer, context: try ZMQContext(), connect: cluster.endpoint)
            var ready = Stagebeam_V1_Ready()
            ready.protocolVersion = EnvelopeCodec.protocolVersion
            ready.workerID = "squatter"
            ready.modelName = "made-up"
            ready.modelHash = String(repeating: "f", count: 64)
            ready.roles = [.generate, .judge]
            ready.maxBatchSequences = 1
            try squatter.socket.send([EnvelopeCodec().encode(.ready(ready))])
            try cluster.coordinator.wait("the squatter to register") { _ in cluster.registrations(of: "squatter") == 1 ? true : nil }
            squatter.socket.close()
        }
        try cluster.coordinator.wait("the squatter to be dropped and its model forgotten") { child in
            child.logged("no worker of a role's model remains: the next worker of the role chooses its model").count == 2 ? true : nil
        }
        #expect(cluster.coordinator.logged("worker lost", ["worker_id": "squatter", "reason": "missed_heartbeats"]).count == 1)
        try cluster.addWorker("w", maxBatch: 4)

        let (status, _, err) = try runStagebeam(
            ["submit", "--coordinator", cluster.endpoint] + TestJob().arguments, in: scratch, name: "submit-text")
        #expect(status == 0, "\(err.suffix(2000))")
        #expect(err.contains("▸ summary · 4 candidate(s)"), "StageStarted carries N\n\(err.suffix(2000))")
    }

    /// `coordinator --model PATH` pins the cluster's model before any worker comes: a worker of
    /// another model is refused with a reason and exits with status 75 (retried by the systemd unit),
    /// one of the pinned model registers; the coordinator prints the identity workers print.
    @Test func pinnedModelRefusesOtherModelsWithARetryableStatus() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        cluster.coordinator.signal(SIGKILL)
        try cluster.startCoordinator(endpoint: "tcp://127.0.0.1:*", extra: ["--model", LocalCluster.model])
        let stranger = try cluster.addWorker("stranger", model: Repo.model("qwen2"), waitForRegistration: false)
        #expect(try stranger.exitStatus() == 75)
        // The same weights with another chat template answer differently: another model.
        let template = scratch.path("template.jinja")
        try "{% for m in messages %}{{ m['content'] }}\n{% endfor %}".write(toFile: template, atomically: true, encoding: .utf8)
        let templated = try cluster.addWorker("templated", extra: ["--chat-template", template], waitForRegistration: false)
        #expect(try templated.exitStatus() == 75)
        let refusals = cluster.coordinator.logged("message refused", ["error_code": "model_mismatch"])
        #expect(refusals.contains { ($0["error"] as? String)?.contains("pinned by the coordinator's --model") == true }, "\(refusals)")
        let worker = try cluster.addWorker("w", maxBatch: 4)
        let identity = try worker.wait("the worker's start line") { child in
            child.stdout.split(separator: " ").first { $0.count == 64 && $0.allSatisfy(\.isHexDigit) }.map(String.init)
        }
        #expect(cluster.coordinator.stdout.contains("model \(identity)"))
    }

    /// A worker whose KV cache cannot hold a stage's 8 candidates together (1,024 slots: the
    /// conclusion's prompt and 8 × 80 new tokens need more) decodes them in parts, and the answer is
    /// the in-process run's (a roomy cache); a worker whose cache cannot hold one candidate alone
    /// fails the job with `kv_cache_too_small` after the re-dispatches, instead of being sent the
    /// same request forever.
    @Test func workersWithSmallKVCachesServeInPartsOrFailTheJob() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        let small = try cluster.addWorker("small", maxBatch: 8, extra: ["--kv-capacity", "1024"])
        let job = TestJob(beam: 8, maxStageTokens: 80)
        let submitted = try cluster.submit(job)
        #expect(submitted["status"] as? String == "succeeded")
        #expect(try SearchOutcome(submitted: submitted) == SearchOutcome(record: job.runInProcess(in: scratch)))
        #expect(generateSizes(small).contains(8), "the 8 candidates of a stage went in one request: \(generateSizes(small))")
        #expect(cluster.coordinator.logged("request re-dispatched").isEmpty)

        small.signal(SIGKILL)
        try cluster.addWorker("tiny", maxBatch: 8, extra: ["--kv-capacity", "16"])
        let (status, out, err) = try runStagebeam(
            ["submit", "--coordinator", cluster.endpoint, "--json"] + TestJob(beam: 2).arguments, in: scratch, name: "submit-tiny")
        #expect(status == 1, "\(err.suffix(1000))")
        let error = try parseJSON(out)["error"] as? [String: Any]
        #expect(error?["code"] as? String == "kv_cache_too_small", "\(out)")
        #expect((error?["message"] as? String)?.contains("the KV cache holds 16") == true, "\(out)")
    }

    /// Images a worker cannot decode fail the job at once with the image's fault — not an image,
    /// a header announcing more pixels than allowed, a corrupt JPEG — instead of `internal` after
    /// re-dispatches to every other worker.
    @Test func badImagesFailAtOnceWithoutRedispatch() throws {
        let scratch = try Scratch()
        let template = scratch.path("template.jinja")
        try
            "{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %} {% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
            .write(toFile: template, atomically: true, encoding: .utf8)
        let model = Repo.root.appendingPathComponent("Tests/Fixtures/vision/llava-clip-llama").path
        let cluster = try LocalCluster(scratch: scratch)
        for id in ["a", "b"] { try cluster.addWorker(id, maxBatch: 2, model: model, extra: ["--chat-template", template]) }
        let vision = Repo.root.appendingPathComponent("Tests/Fixtures/vision")
        let jpeg = try Data(contentsOf: vision.appendingPathComponent("images/jpeg-420.jpg"))
        let images: [(String, Data, String)] = [
            ("text.png", Data("this is not an image".utf8), "bad_image"),
            ("huge.png", try Data(contentsOf: vision.appendingPathComponent("bad/huge-header.png")), "image_too_large"),
            ("corrupt.jpg", jpeg.prefix(jpeg.count / 3), "bad_image")
        ]
        for (name, bytes, code) in images {
            try bytes.write(to: scratch.url.appendingPathComponent(name))
            let (status, out, err) = try runStagebeam(
                ["submit", "--coordinator", cluster.endpoint, "--json", "--image", scratch.path(name)] + TestJob(beam: 2).arguments,
                in: scratch, name: "submit-\(name)")
            #expect(status == 1, "\(err.suffix(1000))")
            let result = try parseJSON(out)
            #expect((result["error"] as? [String: Any])?["code"] as? String == code, "\(name): \(result)")
            #expect((result["counts"] as? [String: Any])?["redispatched_requests"] as? Int == 0, "\(name): \(result)")
        }
        #expect(cluster.coordinator.logged("request re-dispatched").isEmpty)
    }

    /// A peer sending frame after frame that is refused gets every refusal, but the log gets one line
    /// per peer per interval, and then one with the count of the rest.
    @Test func refusalsAreLoggedOncePerPeerPerInterval() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        cluster.coordinator.signal(SIGKILL)
        try cluster.startCoordinator(endpoint: "tcp://127.0.0.1:*", extra: ["--refusal-log-interval-s", "1"])
        let peer = try RawPeer(.dealer, context: try ZMQContext(), connect: cluster.endpoint)
        for _ in 0..<30 { #expect(try peer.error(after: [[0xde, 0xad, 0xbe, 0xef]]).code == .malformedFrame) }
        try cluster.coordinator.wait("the count of the refusals not logged") { child in
            child.logged("messages refused").first
        }
        #expect(cluster.coordinator.logged("message refused").count == 1)
        #expect(cluster.coordinator.logged("messages refused").first?["repeats"] as? Int == 29)
    }
}

/// Mistakes an operator makes at the command line each get one line naming the problem (never a
/// Foundation error dump), and the same limits hold for `run` and `submit`.
@Suite struct OperatorMistakeTests {
    @Test func unusableFilesAndEndpointsGetOneReadableLine() throws {
        let scratch = try Scratch()
        let dead = "tcp://127.0.0.1:9" // nothing listens on the discard port on loopback
        func stagebeam(_ arguments: [String], _ name: String) throws -> (status: Int32, err: String) {
            let (status, _, err) = try runStagebeam(arguments, in: scratch, name: name, timeout: 30)
            #expect(!err.contains("NSCocoaErrorDomain") && !err.contains("Error Domain"), "\(name): \(err)")
            return (status, err)
        }
        let job = ["--question", "What is this?", "--beam", "2"]

        let missing = try stagebeam(["submit", "--coordinator", dead, "--image", scratch.path("missing.png")] + job, "missing-image")
        #expect(missing.status != 0 && missing.err.contains("--image \(scratch.path("missing.png")): no such file"), "\(missing.err)")
        try Data().write(to: scratch.url.appendingPathComponent("empty.png"))
        let empty = try stagebeam(["submit", "--coordinator", dead, "--image", scratch.path("empty.png")] + job, "empty-image")
        #expect(empty.status != 0 && empty.err.contains("no image bytes"), "\(empty.err)")

        let model = scratch.url.appendingPathComponent("model")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: LocalCluster.model), to: model)
        try "{\"model_type\": \"llama\",".write(to: model.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let badConfig = try stagebeam(["run", "--model", model.path] + job, "bad-config")
        #expect(badConfig.status != 0 && badConfig.err.contains("\(model.path)/config.json is not valid JSON"), "\(badConfig.err)")

        let started = Date()
        let submit = try stagebeam(["submit", "--coordinator", dead, "--connect-timeout-s", "1"] + job, "dead-submit")
        #expect(submit.status != 0 && submit.err.contains("no answer from \(dead) within 1.0 s"), "\(submit.err)")
        let input = scratch.path("items.jsonl")
        try #"{"id": "a", "question": "Why?"}"#.write(toFile: input, atomically: true, encoding: .utf8)
        let batch = try stagebeam(
            ["batch", "--coordinator", dead, "--connect-timeout-s", "1", "--input", input, "--output", scratch.path("out.jsonl")],
            "dead-batch")
        #expect(batch.status != 0 && batch.err.contains("no answer from \(dead)"), "\(batch.err)")
        #expect(Date().timeIntervalSince(started) < 20)
    }

    /// `--beam` takes 1 to 64 (what the engine decodes in one request) in `run` and `submit` alike.
    @Test func runAndSubmitAcceptTheSameBeams() throws {
        let scratch = try Scratch()
        for beam in ["0", "65", "100"] {
            for command in [["run"], ["submit", "--coordinator", "tcp://127.0.0.1:9"]] {
                let (status, _, err) = try runStagebeam(
                    command + ["--question", "Why?", "--beam", beam], in: scratch, name: "\(command[0])-beam-\(beam)", timeout: 30)
                #expect(
                    status == 64 && err.contains("--beam must be between 1 and 64, got \(beam)"), "\(command[0]) --beam \(beam): \(err)")
            }
        }
    }

    /// `keygen` does not replace keys without `--force`; a public key file is refused as a secret key.
    @Test func keygenKeepsKeysAndPublicKeysAreNotSecretKeys() throws {
        let scratch = try Scratch()
        let prefix = scratch.path("peer")
        let (first, key, _) = try runStagebeam(["keygen", "--output", prefix], in: scratch, name: "keygen-1")
        #expect(first == 0)
        let secret = try String(contentsOfFile: prefix + ".secret", encoding: .utf8)
        let (again, _, againErr) = try runStagebeam(["keygen", "--output", prefix], in: scratch, name: "keygen-2")
        #expect(again != 0 && againErr.contains("--force"), "\(againErr)")
        #expect(try String(contentsOfFile: prefix + ".secret", encoding: .utf8) == secret)
        let (forced, newKey, _) = try runStagebeam(["keygen", "--output", prefix, "--force"], in: scratch, name: "keygen-3")
        #expect(forced == 0 && newKey != key)

        let (status, _, err) = try runStagebeam(
            [
                // `=`: a Z85 key may begin with "-", which would read as an option.
                "submit", "--coordinator", "tcp://127.0.0.1:9", "--question", "Why?",
                "--curve-server-key=\(key.trimmingCharacters(in: .whitespacesAndNewlines))", "--curve-secret-key-file", prefix + ".public"
            ], in: scratch, name: "submit-public-key", timeout: 30)
        #expect(status != 0 && err.contains("is a public key file"), "\(err)")
    }
}
