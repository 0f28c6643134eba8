import Cluster
import ClusterTestSupport
import Foundation
import SwiftProtobuf
import Testing
import Transport
import Wire

/// A raw peer for poking a coordinator or a worker with hand-made frames (the tests of this target share it).
final class RawPeer {
    let socket: ZMQSocket
    private let codec = EnvelopeCodec()

    init(_ kind: ZMQSocket.Kind, context: ZMQContext, connect: String? = nil, bind: String? = nil) throws {
        socket = try ZMQSocket(context: context, kind: kind)
        if kind == .dealer { try socket.setRoutingID(Array("raw-\(UUID().uuidString.prefix(8))".utf8)) }
        if let connect { try socket.connect(connect) }
        if let bind { try socket.bind(bind) }
    }

    /// The next message that is not a heartbeat or Ready (a ROUTER answers heartbeats to keep a
    /// worker calm); its frames before the envelope, and the decoded envelope body.
    func next(timeout: Duration = .seconds(10)) throws -> (route: [[UInt8]], body: Stagebeam_V1_Envelope.OneOf_Body) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let frames = try socket.receive(timeout: deadline - .now) else { break }
            let body = try codec.decode(frames.last!)
            let route = Array(frames.dropLast())
            switch body {
            case .heartbeat:
                var beat = Stagebeam_V1_Heartbeat()
                beat.known = true
                try socket.send(route + [codec.encode(.heartbeat(beat))])
            case .ready: continue
            default: return (route, body)
            }
        }
        throw ChildProcessError("no answer within \(timeout)")
    }

    func error(after frames: [[UInt8]]) throws -> Stagebeam_V1_Error {
        try socket.send(frames)
        let (_, body) = try next()
        guard case .error(let error) = body else { throw ChildProcessError("expected an error, got \(body)") }
        return error
    }
}

extension ClusterProcessTests {
    /// Garbage, a wrong protocol version, a message with extra frames, messages a coordinator does
    /// not take and invalid jobs each get a typed Error; a worker with another model is refused
    /// (and stops); the coordinator then serves a normal job.
    @Test func badInputGetsTypedErrorsAndTheCoordinatorKeepsServing() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("w", maxBatch: 4)
        let context = try ZMQContext()
        let peer = try RawPeer(.dealer, context: context, connect: cluster.endpoint)
        let codec = EnvelopeCodec()

        #expect(try peer.error(after: [[0xff, 0x00, 0x13, 0x37, 0x42]]).code == .malformedFrame)
        var future = Stagebeam_V1_Envelope()
        future.protocolVersion = 99
        future.statusRequest = Stagebeam_V1_StatusRequest()
        let mismatch = try peer.error(after: [try future.serializedBytes()])
        #expect(mismatch.code == .versionMismatch)
        #expect(mismatch.message.contains("99"))
        let status = try codec.encode(.statusRequest(Stagebeam_V1_StatusRequest()))
        #expect(try peer.error(after: [status, status]).code == .malformedFrame)
        #expect(try peer.error(after: [codec.encode(.jobResult(Stagebeam_V1_JobResult()))]).code == .unexpectedMessage)
        var empty = Stagebeam_V1_SubmitJob()
        empty.question = "  "
        #expect(try peer.error(after: [codec.encode(.submitJob(empty))]).code == .invalidArgument)
        var huge = Stagebeam_V1_SubmitJob()
        huge.question = "Too many candidates?"
        huge.beam = 5000
        let tooBig = try peer.error(after: [codec.encode(.submitJob(huge))])
        #expect(tooBig.code == .invalidArgument && tooBig.message.contains("beam"))
        var answerStage = Stagebeam_V1_SubmitJob()
        answerStage.question = "Which stages?"
        answerStage.searchStages = [.reasoning, .answer]
        let notAStage = try peer.error(after: [codec.encode(.submitJob(answerStage))])
        #expect(notAStage.code == .invalidArgument && notAStage.message.contains("search_stages"), "\(notAStage.message)")

        // A worker serving another model is refused with model_mismatch and stops with the status
        // its systemd unit retries after a delay.
        let stranger = try cluster.addWorker("stranger", model: Repo.model("qwen2"), waitForRegistration: false)
        #expect(try stranger.exitStatus() == 75)
        #expect(!cluster.coordinator.logged("message refused", ["error_code": "model_mismatch"]).isEmpty)
        #expect(!stranger.logged("refused by the coordinator", ["error_code": "model_mismatch"]).isEmpty)

        // Everyone else is still served.
        try peer.socket.send([status])
        guard case .statusReply(let reply) = try peer.next().body else { throw ChildProcessError("expected a status reply") }
        #expect(reply.workers.map(\.workerID) == ["w"])
        let submitted = try cluster.submit(TestJob())
        #expect(submitted["status"] as? String == "succeeded")
    }

    /// An image over the coordinator's `--max-image-bytes` is refused by name; the coordinator serves on.
    @Test func oversizedImageIsRefused() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        cluster.coordinator.signal(SIGKILL)
        try cluster.startCoordinator(endpoint: "tcp://127.0.0.1:*", extra: ["--max-image-bytes", "1000"])
        try cluster.addWorker("w", maxBatch: 4)
        let peer = try RawPeer(.dealer, context: try ZMQContext(), connect: cluster.endpoint)
        var submit = Stagebeam_V1_SubmitJob()
        submit.question = "What is in this picture?"
        submit.image = Data(repeating: 7, count: 2000)
        let refused = try peer.error(after: [EnvelopeCodec().encode(.submitJob(submit))])
        #expect(refused.code == .imageTooLarge && refused.message.contains("2000") && refused.message.contains("1000"))
        #expect(try cluster.submit(TestJob())["status"] as? String == "succeeded")
    }

    /// A job with an image reaches a worker whose model has no vision tower: the job fails with the
    /// worker's typed error instead of being answered without the image, or waiting forever.
    @Test func imageJobOnTextOnlyModelFailsWithTypedError() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("w", maxBatch: 4)
        let image = Repo.root.appendingPathComponent("Tests/Fixtures/vision/images/grey.png").path
        let (status, out, err) = try runStagebeam(
            ["submit", "--coordinator", cluster.endpoint, "--json", "--image", image] + TestJob().arguments,
            in: scratch, name: "submit-image")
        #expect(status == 1)
        let result = try parseJSON(out)
        #expect(result["status"] as? String == "failed")
        let error = result["error"] as? [String: Any]
        #expect(error?["code"] as? String == "invalid_argument")
        #expect((error?["message"] as? String)?.contains("cannot take images") == true, "\(err)")
    }

    /// An image job on LLaVA workers: the answer equals `stagebeam run --image`'s, and the image's
    /// bytes cross the wire once per worker although every stage's requests refer to it.
    @Test func imageJobOnVisionWorkersEqualsInProcessRunAndSendsBytesOnce() throws {
        let scratch = try Scratch()
        // LLaVA-1.5-style turns; the tiny fixture has no chat template of its own.
        let template = scratch.path("template.jinja")
        try """
        {% for m in messages %}{{ m['role'].upper() }}: {% if m['content'] is string %}{{ m['content'] }}{% else %}\
        {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %} \
        {% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}
        """.write(toFile: template, atomically: true, encoding: .utf8)
        let model = Repo.root.appendingPathComponent("Tests/Fixtures/vision/llava-clip-llama").path
        let image = Repo.root.appendingPathComponent("Tests/Fixtures/vision/images/rgb-landscape.png").path
        let arguments = [
            "--question", "What is shown?", "--image", image, "--beam", "4", "--max-stage-tokens", "8",
            "--tournament", "bracket", "--seed", "2"
        ]

        let (runStatus, runOut, runErr) = try runStagebeam(
            ["run", "--model", model, "--chat-template", template, "--json"] + arguments,
            in: scratch, name: "run-image")
        #expect(runStatus == 0, "\(runErr.suffix(2000))")
        let cluster = try LocalCluster(scratch: scratch)
        let workers = try ["a", "b"].map { try cluster.addWorker($0, maxBatch: 2, model: model, extra: ["--chat-template", template]) }
        let (status, out, err) = try runStagebeam(
            ["submit", "--coordinator", cluster.endpoint, "--json", "--record-search"] + arguments,
            in: scratch, name: "submit-image")
        #expect(status == 0, "\(err.suffix(2000))")
        #expect(try SearchOutcome(submitted: parseJSON(out)) == SearchOutcome(record: parseJSON(runOut)))
        for worker in workers {
            #expect(worker.logged("image received").count == 1, "image bytes once per worker")
            #expect(generateSizes(worker).count == 4, "one request per stage")
        }
    }

    /// The worker enforces its own credits: a request over its max batch is refused with
    /// `overloaded`, one within it is served; malformed requests and a prompt over the model's
    /// context get typed errors, and it goes on serving.
    @Test func workerRefusesMoreThanItsCreditsAndBadRequests() throws {
        let scratch = try Scratch()
        let context = try ZMQContext()
        let router = try RawPeer(.router, context: context, bind: "tcp://127.0.0.1:*")
        let endpoint = try router.socket.lastEndpoint()
        let worker = try ChildProcess(
            [
                "worker", "--coordinator", endpoint, "--model", LocalCluster.model, "--worker-id", "capped", "--max-batch", "2",
                // The raw router answers heartbeats only while it waits for an answer: a liveness of 10 s
                // keeps a loaded machine's pauses between requests from making the worker reconnect.
                "--heartbeat-ms", "100", "--liveness", "100"
            ], name: "worker-capped", in: scratch)
        _ = worker

        // Ready first, with the worker's capabilities.
        guard let hello = try router.socket.receive(timeout: .seconds(20)), case .ready(let ready) = try EnvelopeCodec().decode(hello[1])
        else {
            throw ChildProcessError("expected Ready\n\(worker.stderr)")
        }
        #expect(ready.workerID == "capped" && ready.maxBatchSequences == 2 && ready.roles == [.generate, .judge])
        #expect(ready.modelHash.count == 64 && ready.modelName == "llama-gqa")
        let route = [hello[0]]
        let codec = EnvelopeCodec()

        func generate(
            _ id: String, seeds: [UInt64], n: Int? = nil, image: Stagebeam_V1_ImageRef? = nil,
            question: String = "What is two plus two?"
        ) throws -> [[UInt8]] {
            var request = Stagebeam_V1_GenerateRequest()
            request.requestID = id
            request.jobID = "job"
            request.question = question
            request.assistantPrefix = "<SUMMARY>"
            request.seeds = seeds
            request.n = UInt32(n ?? seeds.count)
            request.stop = ["</SUMMARY>"]
            request.maxNewTokens = 8
            request.sampling.temperature = 0.6
            request.sampling.topP = 0.9
            if let image { request.image = image }
            return route + [try codec.encode(.generateRequest(request))]
        }

        let over = try router.error(after: generate("three", seeds: [1, 2, 3]))
        #expect(over.code == .overloaded && over.requestID == "three")
        #expect(try router.error(after: generate("miscounted", seeds: [1], n: 2)).code == .invalidArgument)
        var unknownImage = Stagebeam_V1_ImageRef() // to a text-only model
        unknownImage.sha256 = String(repeating: "ab", count: 32)
        let imageless = try router.error(after: generate("no-vision", seeds: [1], image: unknownImage))
        #expect(imageless.code == .invalidArgument && imageless.message.contains("cannot take images"))
        #expect(try router.error(after: route + [[0x01, 0x02, 0x03]]).code == .malformedFrame)
        // A budget past the context is cut to what the prompt leaves; a prompt that leaves nothing is refused.
        let tooLong = try router.error(after: generate("long", seeds: [1], question: String(repeating: "two plus ", count: 600)))
        #expect(tooLong.code == .promptTooLong && tooLong.message.contains("1024"), "the fixture's context is 1024 tokens")
        var reward = Stagebeam_V1_RewardRequest() // to a worker without the reward role
        reward.requestID = "reward"
        reward.stage = .summary
        reward.assistantPrefixes = [""]
        reward.candidates = [Stagebeam_V1_RewardCandidate()]
        let noReward = try router.error(after: route + [codec.encode(.rewardRequest(reward))])
        #expect(noReward.code == .unexpectedMessage && noReward.message.contains("does not serve reward requests"), "\(noReward.message)")

        try router.socket.send(generate("two", seeds: [1, 2]))
        guard case .generateResult(let result) = try router.next().body else { throw ChildProcessError("expected a result") }
        #expect(result.requestID == "two" && result.workerID == "capped")
        #expect(result.candidates.map(\.seed) == [1, 2])
        #expect(result.candidates.allSatisfy { $0.tokenCount >= 1 && $0.tokenCount <= 8 })
    }
}
