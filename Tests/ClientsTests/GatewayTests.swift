import ClusterTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `stagebeam gateway` as users run it: a process in front of a local cluster of LLaVA workers,
/// driven by real HTTP requests.
@Suite(.serialized) struct GatewayTests {
    /// A chat completion with an inline image equals `stagebeam submit`'s staged answer for the same
    /// options; streamed, its stage deltas concatenate to the same text and end with `[DONE]`.
    @Test func chatCompletionWithImageEqualsSubmitAndStreamsStages() async throws {
        let scratch = try Scratch()
        let served = try VisionCluster(scratch: scratch)
        let gateway = try Gateway(coordinator: served.cluster.endpoint, scratch: scratch)

        let models = try await gateway.json("GET", "/v1/models")
        #expect(models.status == 200)
        let ids = (models.body["data"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(ids == ["llava-clip-llama"], "\(models.body)")

        let png = try Data(contentsOf: VisionCluster.image)
        let request: [String: Any] = [
            "model": "anything-goes-with-one-model",
            "messages": [
                [
                    "role": "user",
                    "content": [
                        ["type": "text", "text": VisionCluster.question],
                        ["type": "image_url", "image_url": ["url": "data:image/png;base64,\(png.base64EncodedString())"]]
                    ]
                ]
            ],
            "beam": 4, "max_stage_tokens": 8, "tournament": "bracket", "seed": 2
        ]
        let completion = try await gateway.json("POST", "/v1/chat/completions", request)
        #expect(completion.status == 200, "\(completion.body)")
        let message = (completion.body["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
        let content = try #require(message?["content"] as? String)
        let submitted = try served.submit()
        #expect(content == (submitted["search"] as? [String: Any])?["text"] as? String)
        for tag in ["<SUMMARY>", "</CAPTION>", "<REASONING>", "</CONCLUSION>"] { #expect(content.contains(tag)) }
        // Usage: the winners' generated tokens, and the job's own counts, as `submit`'s record has them.
        let usage = completion.body["usage"] as? [String: Any] ?? [:]
        let extra = usage["stagebeam"] as? [String: Any] ?? [:]
        let record = try #require(submitted["search"] as? [String: Any])
        let units = (record["stages"] as? [[String: Any]] ?? []).flatMap { $0["units"] as? [[String: Any]] ?? [] }
        let winnerTokens = units.map { unit in
            (unit["candidates"] as? [[String: Any]] ?? []).first { $0["index"] as? Int == unit["winner"] as? Int }?["tokens"] as? Int ?? 0
        }
        #expect(units.count == 4 && usage["completion_tokens"] as? Int == winnerTokens.reduce(0, +), "\(usage)")
        let counts = submitted["counts"] as? [String: Any] ?? [:]
        #expect(extra["candidate_tokens"] as? Int == counts["generated_tokens"] as? Int, "\(usage) vs \(counts)")
        #expect(extra["judge_calls"] as? Int == counts["judge_calls"] as? Int, "\(usage) vs \(counts)")
        #expect((extra["candidate_prompt_tokens"] as? Int ?? 0) > 0, "\(usage)")

        var streamRequest = request
        streamRequest["stream"] = true
        let (status, sse) = try await gateway.send("POST", "/v1/chat/completions", streamRequest)
        #expect(status == 200)
        let events = sse.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.last == "data: [DONE]")
        let chunks = try events.dropLast().map { event -> [String: Any] in
            #expect(event.hasPrefix("data: "))
            return try parseJSON(String(event.dropFirst("data: ".count)))
        }
        let deltas = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }
        #expect(deltas.filter { !$0.isEmpty }.count == 4, "one delta per stage: \(deltas)")
        #expect(deltas.joined() == content)
        #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
    }

    /// Refusals are OpenAI-shaped errors with their HTTP status, and the gateway serves on after them.
    @Test func refusalsAreOpenAIErrors() async throws {
        let scratch = try Scratch()
        let served = try VisionCluster(scratch: scratch, workers: 0)
        let keys = scratch.path("keys.txt")
        try "# gateway keys\nsecret-1\n".write(toFile: keys, atomically: true, encoding: .utf8)
        let gateway = try Gateway(coordinator: served.cluster.endpoint, scratch: scratch, extra: ["--api-keys-file", keys])

        func ask(_ content: Any, key: String? = "secret-1", extra: [String: Any] = [:]) async throws -> (Int, [String: Any]) {
            var body: [String: Any] = ["model": "m", "messages": [["role": "user", "content": content]]]
            body.merge(extra) { $1 }
            let reply = try await gateway.json("POST", "/v1/chat/completions", body, key: key)
            return (reply.status, reply.body["error"] as? [String: Any] ?? [:])
        }
        let noKey = try await ask("Hi?", key: nil)
        #expect(noKey.0 == 401 && noKey.1["code"] as? String == "invalid_api_key")
        let wrongKey = try await ask("Hi?", key: "secret-2")
        #expect(wrongKey.0 == 401)
        let remote = try await ask([["type": "image_url", "image_url": ["url": "http://example.com/cat.png"]]])
        #expect(remote.0 == 400 && remote.1["code"] as? String == "image_url_not_supported", "\(remote)")
        let local = try await ask([["type": "text", "text": "What?"], ["type": "image_url", "image_url": ["url": "/etc/passwd"]]])
        #expect(local.0 == 400 && (local.1["message"] as? String)?.contains("--image-dir") == true, "\(local)")
        let method = try await ask("Hi?", extra: ["method": "beam-of-light"])
        #expect(method.0 == 400 && (method.1["message"] as? String)?.contains("stage, best-of-n") == true, "\(method)")
        let stage = try await ask("Hi?", extra: ["search_stages": ["reasoning", "answer"]])
        #expect(stage.0 == 400 && (stage.1["message"] as? String)?.contains("summary, caption, reasoning, conclusion") == true, "\(stage)")
        let stages = try await ask("Hi?", extra: ["search_stages": "reasoning"])
        #expect(stages.0 == 400 && (stages.1["message"] as? String)?.contains("search_stages") == true, "\(stages)")
        let malformed = try await gateway.send("POST", "/v1/chat/completions", raw: Data("{not json".utf8), key: "secret-1")
        #expect(malformed.0 == 400 && malformed.1.contains("\"invalid_request_error\""), "\(malformed.1)")
        let unknown = try await gateway.send("GET", "/v1/nothing", raw: nil, key: "secret-1")
        #expect(unknown.0 == 404)
        // The coordinator refuses the beam it cannot run: its invalid_argument is a 400.
        let beam = try await ask("Hi?", extra: ["beam": 100_000])
        #expect(beam.0 == 400 && beam.1["code"] as? String == "invalid_argument", "\(beam)")
    }
}

/// A local cluster of LLaVA workers on the tiny CLIP + Llama fixture.
struct VisionCluster {
    static let model = Repo.root.appendingPathComponent("Tests/Fixtures/vision/llava-clip-llama").path
    static let image = Repo.root.appendingPathComponent("Tests/Fixtures/vision/images/rgb-landscape.png")
    static let question = "What is shown?"
    /// The search options of every job here; the chat requests send the same as body fields.
    static let options = [
        "--question", question, "--image", image.path, "--beam", "4", "--max-stage-tokens", "8", "--tournament", "bracket", "--seed", "2"
    ]
    let cluster: LocalCluster
    let template: String
    let scratch: Scratch

    init(scratch: Scratch, workers: Int = 2) throws {
        self.scratch = scratch
        // LLaVA-1.5-style turns; the tiny fixture has no chat template of its own.
        template = scratch.path("template.jinja")
        try """
        {% for m in messages %}{{ m['role'].upper() }}: {% if m['content'] is string %}{{ m['content'] }}{% else %}\
        {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %} \
        {% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}
        """.write(toFile: template, atomically: true, encoding: .utf8)
        cluster = try LocalCluster(scratch: scratch)
        for id in ["a", "b"].prefix(workers) {
            try cluster.addWorker(id, maxBatch: 4, model: Self.model, extra: ["--chat-template", template])
        }
    }

    /// `stagebeam submit --json --record-search` with `options`.
    func submit() throws -> [String: Any] {
        let (status, out, err) = try runStagebeam(
            ["submit", "--coordinator", cluster.endpoint, "--json", "--record-search"] + Self.options, in: scratch, name: "submit-image")
        #expect(status == 0, "\(err.suffix(2000))")
        return try parseJSON(out)
    }
}

/// A `stagebeam gateway` process on a free loopback port.
struct Gateway {
    let process: ChildProcess
    let base: String

    init(coordinator: String, scratch: Scratch, extra: [String] = []) throws {
        process = try ChildProcess(
            ["gateway", "--coordinator", coordinator, "--listen", "127.0.0.1:0", "--log-format", "json"] + extra,
            name: "gateway", in: scratch)
        base = try process.wait("the listening line") { child in
            child.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("http://") }.map(String.init)
        }
    }

    /// Sends `object` as JSON; returns the status and the JSON reply.
    func json(_ method: String, _ path: String, _ object: [String: Any]? = nil, key: String? = nil) async throws -> (
        status: Int, body: [String: Any]
    ) {
        let (status, text) = try await send(method, path, raw: try object.map { try JSONSerialization.data(withJSONObject: $0) }, key: key)
        return (status, try parseJSON(text))
    }

    func send(_ method: String, _ path: String, _ object: [String: Any], key: String? = nil) async throws -> (Int, String) {
        try await send(method, path, raw: try JSONSerialization.data(withJSONObject: object), key: key)
    }

    func send(_ method: String, _ path: String, raw: Data?, key: String?) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.timeoutInterval = 120
        if let raw {
            request.httpBody = raw
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}
