import ClusterTestSupport
import Foundation
import Hummingbird
import Synchronization
import Tokenization

/// An in-process HTTP server that answers as llama.cpp's `llama-server` does (`GET /props`,
/// `GET /v1/models`, `POST /completion` with a token-array prompt), or, with `llamaCpp: false`, as a
/// vLLM-style server (`/v1/models`, `POST /v1/completions`; 404 for `/props`). Its answers are a
/// deterministic function of the request: a candidate's text is `script(seed)`, tokenized with the
/// model's tokenizer, returned token by token until a stop string completes, an end-of-generation
/// token, or `n_predict`, as llama.cpp returns them. Faults queued with `inject` answer the next
/// requests instead: an HTTP status, a delay, or a connection dropped mid-answer.
final class FakeInferenceServer: Sendable {
    enum Fault: Sendable {
        case status(Int)
        case slow(Duration)
        case drop
    }

    struct State {
        var faults: [Fault] = []
        /// Every POST body received, in order.
        var received: [Data] = []
        var inFlight = 0
        var mostInFlight = 0
    }

    let tokenizer: Tokenizer
    let slots: Int
    let contextTokens: Int
    let llamaCpp: Bool
    /// Ids never put in the first 20 top log-probabilities of a verdict (only in a whole-vocabulary list).
    let rareTokens: Set<Int>
    /// Ids never listed in a verdict's top log-probabilities, even over the whole vocabulary.
    let missingTokens: Set<Int>
    let eosToken: Int
    private let state = Mutex(State())

    init(
        tokenizer: Tokenizer, eosToken: Int, slots: Int = 2, contextTokens: Int = 2048, llamaCpp: Bool = true, rareTokens: Set<Int> = [],
        missingTokens: Set<Int> = []
    ) {
        self.tokenizer = tokenizer
        self.eosToken = eosToken
        self.slots = slots
        self.contextTokens = contextTokens
        self.llamaCpp = llamaCpp
        self.rareTokens = rareTokens
        self.missingTokens = missingTokens
    }

    /// Answers the next requests with `faults`, one each, before answering normally again.
    func inject(_ faults: Fault...) { state.withLock { $0.faults += faults } }

    /// Every POST body received, in order, parsed.
    var received: [[String: Any]] {
        state.withLock { $0.received }.map { (try? JSONSerialization.jsonObject(with: $0)) as? [String: Any] ?? [:] }
    }
    var mostInFlight: Int { state.withLock { $0.mostInFlight } }

    /// The text a candidate with this (folded, 32-bit) seed writes: it closes the summary for
    /// seeds ≡ 0, 1 (mod 4), ends with end-of-generation for 2 and runs on for 3.
    static func script(seed: Int) -> String {
        switch seed % 4 {
        case 0, 1: "plan \(seed % 100) first</SUMMARY> after"
        case 2: "short \(seed % 100)"
        default: "long " + String(repeating: "words and more ", count: 40)
        }
    }

    /// Serves on a free loopback port until the returned task is cancelled.
    func start() async throws -> (port: Int, task: Task<Void, any Error>) {
        let router = Router()
        router.get("/props") { [self] _, _ -> Response in
            guard llamaCpp else { return Self.json(["error": "not found"], status: .notFound) }
            return Self.json([
                "total_slots": slots, "default_generation_settings": ["n_ctx": contextTokens], "model_path": "/models/fake.gguf"
            ])
        }
        router.get("/v1/models") { _, _ in Self.json(["object": "list", "data": [["id": "fake-model", "object": "model"]]]) }
        router.post("/completion") { [self] request, _ in try await answer(request) { [self] in completion($0) } }
        router.post("/v1/completions") { [self] request, _ in try await answer(request) { [self] in completions($0) } }
        let (ports, report) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in report.yield(channel.localAddress?.port ?? 0) })
        // On a thread of its own: the tests that use it block the tasks' pool while they wait.
        let task = Task(executorPreference: ThreadExecutor.shared) { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        return (port, task)
    }

    private func answer(_ request: Request, _ respond: @escaping @Sendable ([String: Any]) -> [String: Any]) async throws -> Response {
        let bytes = try await request.body.collect(upTo: 1 << 24)
        let data = Data(bytes.readableBytesView)
        let body = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        let fault: Fault? = state.withLock { state in
            state.received.append(data)
            state.inFlight += 1
            state.mostInFlight = max(state.mostInFlight, state.inFlight)
            return state.faults.isEmpty ? nil : state.faults.removeFirst()
        }
        defer { state.withLock { $0.inFlight -= 1 } }
        switch fault {
        case .status(let code):
            return Self.json(["error": ["code": code, "message": "injected failure"]], status: .init(code: code))
        case .slow(let delay):
            try await Task.sleep(for: delay)
        case .drop:
            // Headers promise a body that never comes: the connection closes mid-answer.
            return Response(
                status: .ok, headers: [.contentType: "application/json", .contentLength: "1000"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "{\"tokens\": ["))
                    throw CancellationError()
                })
        case nil:
            break
        }
        return Self.json(respond(body))
    }

    /// llama.cpp's `/completion`.
    private func completion(_ body: [String: Any]) -> [String: Any] {
        let prompt = body["prompt"] as? [Int] ?? []
        let probs = body["n_probs"] as? Int ?? 0
        let budget = body["n_predict"] as? Int ?? 16
        if budget == 1 && probs > 1 {
            // A verdict: the next token's top log-probabilities, a function of the prompt.
            let ranked = verdictDistribution(prompt: prompt).filter {
                !missingTokens.contains($0.id) && (probs >= tokenizer.vocabularySize || !rareTokens.contains($0.id))
            }
            let top = ranked.prefix(probs).map { ["id": $0.id, "logprob": $0.logprob, "token": ""] as [String: Any] }
            return [
                "tokens": [ranked[0].id], "stop_type": "limit", "tokens_evaluated": prompt.count,
                "completion_probabilities": [["id": ranked[0].id, "logprob": ranked[0].logprob, "top_logprobs": top]]
            ]
        }
        let (tokens, stopType, stopTokens) = generate(
            seed: body["seed"] as? Int ?? 0, budget: budget, stop: body["stop"] as? [String] ?? [])
        var answer: [String: Any] = [
            "tokens": tokens, "stop_type": stopType, "tokens_evaluated": prompt.count, "timings": ["prompt_ms": 1.5, "predicted_ms": 2.5]
        ]
        if probs > 0 {
            // As llama.cpp: a stop string's tokens are left out of the log-probabilities.
            answer["completion_probabilities"] = tokens.dropLast(stopTokens).map { ["id": $0, "logprob": -0.25, "top_logprobs": []] }
        }
        return answer
    }

    /// vLLM's `/v1/completions` (text with the stop string included; prompt_logprobs when asked).
    private func completions(_ body: [String: Any]) -> [String: Any] {
        let prompt = body["prompt"] as? [Int] ?? []
        if body["prompt_logprobs"] != nil {
            var scores: [Any] = [NSNull()]
            for position in 1..<prompt.count {
                let distribution = verdictDistribution(prompt: Array(prompt[..<position]))
                let logprob = distribution.first { $0.id == prompt[position] }?.logprob ?? -20
                scores.append([String(prompt[position]): ["logprob": logprob, "rank": 1]])
            }
            return ["choices": [["text": "", "finish_reason": "length", "prompt_logprobs": scores]]]
        }
        let (tokens, stopType, _) = generate(
            seed: body["seed"] as? Int ?? 0, budget: body["max_tokens"] as? Int ?? 16, stop: body["stop"] as? [String] ?? [])
        var text = tokenizer.decode(tokens.filter { $0 != eosToken })
        // vLLM cuts the text just after the stop string it keeps.
        if stopType == "word", let word = (body["stop"] as? [String])?.first(where: { text.contains($0) }), let range = text.range(of: word)
        {
            text = String(text[..<range.upperBound])
        }
        return [
            "choices": [
                [
                    "text": text, "finish_reason": stopType == "limit" ? "length" : "stop",
                    "logprobs": ["token_logprobs": tokens.map { _ in -0.25 }]
                ]
            ],
            "usage": ["prompt_tokens": prompt.count, "completion_tokens": tokens.count]
        ]
    }

    /// The candidate's tokens until a stop string completes (that token included), then how it
    /// stopped and how many tokens the stop string takes.
    private func generate(seed: Int, budget: Int, stop: [String]) -> (tokens: [Int], stopType: String, stopTokens: Int) {
        var script = tokenizer.encode(Self.script(seed: seed), addSpecialTokens: false)
        if seed % 4 == 2 { script.append(eosToken) }
        var tokens: [Int] = []
        var text = ""
        for token in script {
            tokens.append(token)
            if token == eosToken { return (tokens, "eos", 0) }
            text = tokenizer.decode(tokens)
            if let word = stop.first(where: { text.contains($0) }) {
                return (tokens, "word", tokenizer.encode(word, addSpecialTokens: false).count)
            }
            if tokens.count >= budget { return (tokens, "limit", 0) }
        }
        return (tokens, "limit", 0)
    }

    /// Log-probabilities over the vocabulary for the token after `prompt`, best first: the ids
    /// ranked by a hash of (prompt, id).
    func verdictDistribution(prompt: [Int]) -> [(id: Int, logprob: Double)] {
        var hasher = 1_469_598_103_934_665_603 as UInt64
        for token in prompt { hasher = (hasher ^ UInt64(token)) &* 1_099_511_628_211 }
        let seed = hasher
        return (0..<tokenizer.vocabularySize).map { id -> (Int, UInt64) in (id, (seed ^ UInt64(id)) &* 0x9E37_79B9_7F4A_7C15) }
            .sorted { $0.1 < $1.1 }.enumerated().map { rank, entry in (entry.0, -0.5 - Double(rank) * 0.125) }
    }

    static func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
