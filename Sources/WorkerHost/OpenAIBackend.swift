import ChatTemplates
import Cluster
import Foundation
import Generation
import LocalEngine
import NIOHTTP1
import Search
import Synchronization
import Tokenization
import Wire

/// A worker's requests served by an inference server behind an OpenAI-compatible API
/// (docs/server-backends.md).
///
/// The worker keeps the model's tokenizer and chat template and builds every prompt as the
/// in-process engine does (`ChatPrompt`), then sends it as token ids, so the server never renders a
/// template of its own. Each candidate is one HTTP request (n = 1) carrying that candidate's seed,
/// so a candidate's tokens do not depend on how a stage was split over workers. The server's
/// tokens are turned back into text with the worker's tokenizer and cut at the request's stop
/// strings exactly as the engine cuts them.
///
/// Two dialects, chosen by what the server answers:
/// - llama.cpp's `llama-server` (it answers `GET /props`): `POST /completion` with the prompt as a
///   token array, `cache_prompt: false`, `return_tokens: true`; a logprob verdict reads the
///   choice tokens in `n_probs` top log-probabilities (again with the whole vocabulary when a
///   choice is not among the first 20);
/// - any other server (vLLM, SGLang): `POST /v1/completions` with the prompt as a token-id array;
///   a logprob verdict scores each choice with vLLM's `prompt_logprobs`.
///
/// Images are refused: prompts are text only.
public final class OpenAIBackend: WorkerBackend {
    public struct Configuration: Sendable {
        /// The server's root URL (a trailing `/v1` is accepted).
        public var url: String
        /// The model name the server serves (`model` of `/v1/completions`); nil: the first of `GET /v1/models`.
        public var servedModel: String?
        public var apiKey: String?
        /// An operator-given identity replacing the derived one (`--model-id`).
        public var modelID: String?
        /// Requests the server runs at once; nil: llama.cpp's total slots (required for other servers).
        public var slots: Int?
        /// The wait for a request sent without a deadline.
        public var timeout: Duration
        /// The operator vouches that the server gives the same tokens for the same seed whatever
        /// else it runs (vLLM with its batch-invariant mode): no determinism caveat is reported.
        public var serverIsDeterministic: Bool

        public init(
            url: String, servedModel: String? = nil, apiKey: String? = nil, modelID: String? = nil, slots: Int? = nil,
            timeout: Duration = .seconds(300), serverIsDeterministic: Bool = false
        ) {
            self.url = url
            self.servedModel = servedModel
            self.apiKey = apiKey
            self.modelID = modelID
            self.slots = slots
            self.timeout = timeout
            self.serverIsDeterministic = serverIsDeterministic
        }
    }

    public enum Dialect: String, Sendable {
        case llamaCpp = "llama.cpp server"
        case completions = "OpenAI-compatible server"
    }

    public let dialect: Dialect
    /// The model name sent to the server and shown in logs.
    public let servedModel: String
    /// Requests the server runs at once (its slots): the worker's credits unless `--max-batch` says otherwise.
    public let slots: Int
    public let modelName: String
    public let modelHash: String
    public let recommendationsJSON: Data
    public let contextTokens: Int
    public var maxSamples: Int { Self.maxCredits }
    public let determinismCaveat: String
    public let backendDescription: String
    public var imageRefusal: String? {
        "this worker's \(dialect.rawValue) backend sends text prompts only; send the question without an image, or use workers on stagebeam's own engine"
    }

    let client: OpenAIClient
    let timeout: Duration
    let prompt: ChatPrompt
    let stopTokenIds: Set<Int>
    /// Each token's bytes as the engine appends them to a candidate's text (special tokens: none).
    let tokenText: [[UInt8]]
    let vocabularySize: Int
    private let calls = Mutex<[String: Int]>([:])

    /// More credits than any server runs at once: `--max-batch` is checked against it.
    static let maxCredits = 4096
    /// Top log-probabilities asked for a logprob verdict before asking for the whole vocabulary.
    static let verdictTopLogprobs = 20

    /// Asks the server what it is (dialect, slots, context, served model) and derives the identity.
    /// `model` gives the tokenizer, chat template and end-of-generation ids; `chatTemplate` replaces
    /// its template (`--chat-template`).
    public static func connect(configuration: Configuration, model: LoadedModel, chatTemplate: ChatTemplate? = nil) async throws
        -> OpenAIBackend
    {
        let generator = model.makeGenerator(kvCapacityTokens: 16, prefixCacheEntries: 0)
        let name = model.url.standardizedFileURL.lastPathComponent
        if generator.takesImages {
            throw ClusterError(
                .invalidArgument,
                "model \(name) takes images, and a server-backed worker sends text prompts only: use a text model with --backend, or run this model on stagebeam's own engine"
            )
        }
        let client = try OpenAIClient(
            root: configuration.url, apiKey: configuration.apiKey, connections: configuration.slots ?? maxCredits)
        do {
            let probe = try await Probe.run(client, configuration: configuration)
            let slots = configuration.slots ?? probe.slots
            guard let slots else {
                throw ClusterError(
                    .invalidArgument,
                    "\(client.root) does not say how many requests it runs at once (it is not llama.cpp's server): give --max-batch")
            }
            return try OpenAIBackend(
                client: client, probe: probe, slots: slots, configuration: configuration, model: model, generator: generator,
                chatTemplate: chatTemplate)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private init(
        client: OpenAIClient, probe: Probe, slots: Int, configuration: Configuration, model: LoadedModel, generator: TextGenerator,
        chatTemplate: ChatTemplate?
    ) throws {
        self.client = client
        dialect = probe.dialect
        servedModel = probe.servedModel
        self.slots = slots
        timeout = configuration.timeout
        prompt = try ChatPrompt(tokenizer: generator.tokenizer, template: chatTemplate)
        stopTokenIds = generator.eosTokenIds(generationConfig: model.generationConfig)
        let tokenizer = generator.tokenizer
        let special = tokenizer.specialTokenIds
        vocabularySize = tokenizer.vocabularySize
        tokenText = (0..<tokenizer.vocabularySize).map { special.contains($0) ? [] : tokenizer.tokenBytes($0) }
        contextTokens = min(generator.contextLength, probe.contextTokens ?? .max)
        modelName = probe.servedModel
        if let id = configuration.modelID {
            modelHash = id
        } else {
            // The served model's name and the model whose tokenizer and template build the prompts:
            // two workers agree only if both send the same token ids to a server of the same kind
            // serving a model of the same name.
            let local = try ModelIdentity.compute(model: model.url, chatTemplate: chatTemplate?.source)
            let lines =
                "stagebeam server backend identity 1\nserver\t\(probe.dialect.rawValue)\nserved model\t\(probe.servedModel)\nprompt model\t\(local)\n"
            modelHash = ContentHash.sha256Hex(Array(lines.utf8))
        }
        _ = try ModelRecommendations(model: model.url)
        let recommendations = ModelRecommendations.file(ofModel: model.url)
        recommendationsJSON = FileManager.default.fileExists(atPath: recommendations.path) ? try Data(contentsOf: recommendations) : Data()
        backendDescription = "\(probe.dialect.rawValue) \(client.root), model \(probe.servedModel), \(slots) slot\(slots == 1 ? "" : "s")"
        determinismCaveat = Self.caveat(dialect: probe.dialect, serverSlots: probe.slots, vouched: configuration.serverIsDeterministic)
    }

    /// Closes the HTTP connections.
    public func shutdown() async throws { try await client.shutdown() }

    /// What the backend promises about the same seeds giving the same tokens (docs/server-backends.md, "Determinism").
    static func caveat(dialect: Dialect, serverSlots: Int?, vouched: Bool) -> String {
        if vouched { return "" }
        switch dialect {
        case .llamaCpp:
            guard let serverSlots, serverSlots > 1 else { return "" }
            return
                "llama.cpp server with \(serverSlots) slots decodes concurrent requests together, and its results depend on the batch: a candidate's tokens may depend on what ran beside it (start it with --parallel 1 for reproducible answers)"
        case .completions:
            return
                "the server batches concurrent requests and does not promise the same tokens for the same seed (vLLM does in its batch-invariant mode; then start the worker with --backend-deterministic)"
        }
    }

    // MARK: Generate

    /// `control` is not read: the server's answers come whole (no text progress), and a stopped
    /// request's serving task is cancelled by the worker, which cancels its calls to the server.
    public func generate(
        _ request: Stagebeam_V1_GenerateRequest, image: PromptImage?, deadline: ContinuousClock.Instant?, control: GenerationControl
    ) async throws -> Stagebeam_V1_GenerateResult {
        guard image == nil else { throw ClusterError(.invalidArgument, imageRefusal!) }
        let tokens = try prompt.tokens(user: request.question, assistantPrefix: request.assistantPrefix)
        let budget = try newTokenBudget(
            request.maxNewTokens == 0 ? WorkerEngine.defaultMaxNewTokens : Int(request.maxNewTokens), promptTokens: tokens.count)
        let sampling = SamplingSettings(request.sampling)
        let until = deadline ?? .now + timeout
        let started = ContinuousClock.now
        let outputs = try await withThrowingTaskGroup(of: (Int, ServerOutput).self) { group in
            for (index, seed) in request.seeds.enumerated() {
                group.addTask { [self] in
                    (index, try await complete(tokens, seed: seed, sampling: sampling, stop: request.stop, budget: budget, deadline: until))
                }
            }
            var outputs = [ServerOutput?](repeating: nil, count: request.seeds.count)
            for try await (index, output) in group { outputs[index] = output }
            return outputs.map { $0! }
        }
        var result = Stagebeam_V1_GenerateResult()
        result.requestID = request.requestID
        result.jobID = request.jobID
        result.candidates = zip(outputs, request.seeds).map { output, seed in
            var candidate = Stagebeam_V1_GeneratedCandidate()
            candidate.text = output.text
            candidate.tokenCount = UInt32(output.tokenCount)
            candidate.cumulativeLogprob = output.cumulativeLogprob
            candidate.finishReason = output.finishReason.wire
            candidate.seed = seed
            candidate.decodeMs = output.serverMs
            return candidate
        }
        result.promptTokens = UInt32(tokens.count)
        result.decodeMs = milliseconds(ContinuousClock.now - started)
        return result
    }

    /// `requested` cut to what the context leaves after the prompt, as the engine's `newTokenBudget`.
    func newTokenBudget(_ requested: Int, promptTokens: Int) throws -> Int {
        let room = contextTokens - promptTokens
        guard room > 0 else {
            throw ClusterError(.promptTooLong, "prompt of \(promptTokens) tokens fills the \(contextTokens)-token context")
        }
        return min(requested, room)
    }

    /// One candidate: what the server generated, as the engine would report it.
    struct ServerOutput {
        var text: String
        var tokenCount: Int
        var cumulativeLogprob: Double
        var finishReason: Search.FinishReason
        var serverMs: Double
    }

    /// The wire's sampling with the engine's reading of unset fields.
    struct SamplingSettings {
        var temperature: Float
        var topK: Int
        var topP: Float
        var minP: Float
        var repetitionPenalty: Float

        init(_ wire: Stagebeam_V1_Sampling) {
            let sampling = Sampling(wire: wire)
            temperature = Float(sampling.temperature)
            topK = sampling.topK
            topP = Float(sampling.topP)
            minP = wire.minP
            repetitionPenalty = wire.repetitionPenalty == 0 ? 1 : wire.repetitionPenalty
        }

    }

    /// llama.cpp takes 32-bit seeds: the two halves of the candidate's seed folded together
    /// (0xFFFFFFFF, llama.cpp's "random", becomes 0xFFFFFFFE).
    static func serverSeed(_ seed: UInt64) -> UInt32 {
        let folded = UInt32(truncatingIfNeeded: seed ^ (seed >> 32))
        return folded == .max ? .max - 1 : folded
    }

    func complete(
        _ tokens: [Int], seed: UInt64, sampling: SamplingSettings, stop: [String], budget: Int, deadline: ContinuousClock.Instant
    ) async throws -> ServerOutput {
        switch dialect {
        case .llamaCpp:
            let body = LlamaCompletionRequest(
                prompt: tokens, nPredict: budget, seed: Self.serverSeed(seed), temperature: sampling.temperature, topK: sampling.topK,
                topP: sampling.topP, minP: sampling.minP, repeatPenalty: sampling.repetitionPenalty, repeatLastN: contextTokens, stop: stop,
                nProbs: 1)
            let response = try await call {
                try await client.post("/completion", body, as: LlamaCompletionResponse.self, deadline: deadline)
            }
            var output = replay(response.tokens, stop: stop, budget: budget, serverSaidEOS: response.stopType == "eos")
            // The server leaves the stop string's tokens out of its log-probabilities: the sum covers the tokens before it.
            output.cumulativeLogprob = (response.completionProbabilities ?? []).prefix(output.tokenCount).reduce(0) { $0 + $1.logprob }
            output.serverMs = (response.timings?.promptMs ?? 0) + (response.timings?.predictedMs ?? 0)
            return output
        case .completions:
            let body = CompletionsRequest(
                model: servedModel, prompt: tokens, maxTokens: budget, seed: Self.serverSeed(seed), temperature: sampling.temperature,
                topP: sampling.topP, topK: sampling.topK > 0 ? sampling.topK : nil, minP: sampling.minP,
                repetitionPenalty: sampling.repetitionPenalty, stop: stop, logprobs: 1)
            let response = try await call {
                try await client.post("/v1/completions", body, as: CompletionsResponse.self, deadline: deadline)
            }
            guard let choice = response.choices.first else {
                throw ClusterError(.backendUnavailable, "\(client.root)/v1/completions answered no choice")
            }
            let finish: Search.FinishReason =
                choice.finishReason == "length"
                ? .length : stop.contains(where: { !$0.isEmpty && choice.text.hasSuffix($0) }) ? .stop : .eos
            let logprobs = (choice.logprobs?.tokenLogprobs ?? []).compactMap { $0 }
            return ServerOutput(
                text: choice.text, tokenCount: response.usage?.completionTokens ?? logprobs.count,
                cumulativeLogprob: logprobs.reduce(0, +), finishReason: finish, serverMs: 0)
        }
    }

    /// The server's tokens read as the engine reads its own: an end-of-generation id ends the
    /// candidate (counted, not written), each other token appends its bytes, and the text is cut
    /// just after the earliest stop string.
    func replay(_ tokens: [Int], stop: [String], budget: Int, serverSaidEOS: Bool) -> ServerOutput {
        let stops = stop.map { Array($0.utf8) }.filter { !$0.isEmpty }
        var bytes: [UInt8] = []
        var count = 0
        var finish: Search.FinishReason?
        for token in tokens {
            count += 1
            if stopTokenIds.contains(token) {
                finish = .eos
                break
            }
            let previous = bytes.count
            if token >= 0 && token < tokenText.count { bytes += tokenText[token] }
            if let end = Self.earliestStopEnd(stops, in: bytes, previousCount: previous) {
                bytes.removeLast(bytes.count - end)
                finish = .stop
                break
            }
            if count >= budget {
                finish = .length
                break
            }
        }
        // The server may end on an end-of-generation token the model's configuration does not list.
        return ServerOutput(
            text: String(decoding: bytes, as: UTF8.self), tokenCount: count, cumulativeLogprob: 0,
            finishReason: finish ?? (serverSaidEOS ? .eos : .length), serverMs: 0)
    }

    /// The end offset of the earliest stop string that ends in the bytes after `previousCount`.
    static func earliestStopEnd(_ stops: [[UInt8]], in text: [UInt8], previousCount: Int) -> Int? {
        var earliest: Int?
        for stop in stops where stop.count <= text.count {
            var start = max(0, previousCount - stop.count + 1)
            while start + stop.count <= text.count {
                if text[start..<(start + stop.count)].elementsEqual(stop) {
                    earliest = min(earliest ?? .max, start + stop.count)
                    break
                }
                start += 1
            }
        }
        return earliest
    }

    // MARK: Judge

    /// A request's matches are sent to the server at once, each on its own (the server batches them).
    public func judge(_ request: Stagebeam_V1_JudgeRequest, image: PromptImage?, deadline: ContinuousClock.Instant?) async throws
        -> Stagebeam_V1_JudgeResult
    {
        try await judgeMatchByMatch(request) { match in try await self.judgeOne(match, image: image, deadline: deadline) }
    }

    private func judgeOne(_ request: Stagebeam_V1_JudgeRequest, image: PromptImage?, deadline: ContinuousClock.Instant?) async throws
        -> Stagebeam_V1_JudgeResult
    {
        guard image == nil else { throw ClusterError(.invalidArgument, imageRefusal!) }
        guard !request.prompt.isEmpty else {
            throw ClusterError(
                .invalidArgument, "judge request \(request.requestID) carries no rendered prompt; this worker judges rendered prompts only")
        }
        let until = deadline ?? .now + timeout
        let started = ContinuousClock.now
        var result = Stagebeam_V1_JudgeResult()
        result.requestID = request.requestID
        result.jobID = request.jobID
        if request.verdictMode == .generate {
            let tokens = try prompt.tokens(user: request.prompt, assistantPrefix: request.verdictPrefix)
            let budget = try newTokenBudget(
                request.maxVerdictTokens == 0 ? WorkerEngine.defaultVerdictTokens : Int(request.maxVerdictTokens),
                promptTokens: tokens.count)
            let output = try await complete(
                tokens, seed: request.seed, sampling: SamplingSettings(request.sampling), stop: [], budget: budget, deadline: until)
            result.verdictText = output.text
            result.promptTokens = UInt32(tokens.count)
            result.decodeMs = milliseconds(ContinuousClock.now - started)
            return result
        }
        guard request.choices.count == 2 else {
            throw ClusterError(.invalidArgument, "a logprob verdict needs exactly two choices, got \(request.choices.count)")
        }
        let (shared, continuations) = try prompt.choiceTokens(
            user: request.prompt, imageCount: 0, verdictPrefix: request.verdictPrefix, choices: request.choices, expand: { $0 })
        if shared.count + continuations.map(\.count).max()! > contextTokens {
            // As the engine answers: the verdict is undecided, the match goes on.
            throw ClusterError(.promptTooLong, "judge prompt of \(shared.count) tokens does not fit the \(contextTokens)-token context")
        }
        let (first, second) = try await choiceLogprobs(shared: shared, continuations: continuations, deadline: until)
        result.logprobFirst = first
        result.logprobSecond = second
        result.probabilityFirst = 1 / (1 + exp(second - first))
        result.probabilitySecond = 1 - result.probabilityFirst
        result.choice = first > second ? .first : first < second ? .second : .unspecified
        result.promptTokens = UInt32(shared.count)
        result.prefillMs = milliseconds(ContinuousClock.now - started)
        return result
    }

    // MARK: Self-reward

    /// What one self-reward request got from the server.
    struct SelfRewardScores: Sendable {
        /// log p(yes) − log p(no) per answer, in order; −∞ for an answer whose prompt does not fit the context.
        var scores: [Double]
        /// Tokens sent: each fitting prompt and every choice token after the first.
        var promptTokens: Int
    }

    /// Self-reward on the served model: each answer's prompt (`ChatPrompt.selfRewardTokens`, the
    /// tokens the engine scores) is sent on its own, all at once, and its choices' log-probabilities
    /// read as a logprob verdict reads them (`choiceLogprobs`). An answer whose prompt does not fit
    /// the context scores −∞, as on the engine.
    func selfRewardScores(_ request: ScoreRequest, deadline: ContinuousClock.Instant?) async throws -> SelfRewardScores {
        guard request.choices.count == 2 else {
            throw ClusterError(.invalidArgument, "a self-reward score needs exactly two choices (yes, no), got \(request.choices.count)")
        }
        let until = deadline ?? .now + timeout
        let items = try request.answers.map { answer in
            try prompt.selfRewardTokens(
                user: request.question, imageCount: 0, answer: answer, verification: request.verification,
                verdictPrefix: request.verdictPrefix, choices: request.choices, expand: { $0 })
        }
        let fits = items.map { $0.shared.count + $0.continuations.map(\.count).max()! <= contextTokens }
        let scores = try await withThrowingTaskGroup(of: (Int, Double).self) { group in
            for (index, item) in items.enumerated() where fits[index] {
                group.addTask {
                    let (yes, no) = try await self.choiceLogprobs(shared: item.shared, continuations: item.continuations, deadline: until)
                    return (index, yes - no)
                }
            }
            var scores = [Double](repeating: -.infinity, count: items.count)
            for try await (index, score) in group { scores[index] = score }
            return scores
        }
        var promptTokens = 0
        for (item, fit) in zip(items, fits) where fit {
            promptTokens += item.shared.count
            for continuation in item.continuations { promptTokens += continuation.count - 1 }
        }
        return SelfRewardScores(scores: scores, promptTokens: promptTokens)
    }

    /// log p(continuation | shared) of both choices, teacher-forced as the engine scores them.
    func choiceLogprobs(shared: [Int], continuations: [[Int]], deadline: ContinuousClock.Instant) async throws -> (Double, Double) {
        switch dialect {
        case .llamaCpp:
            // Both choices' first tokens follow the same context: one call scores both.
            let heads = try await nextTokenLogprobs(context: shared, tokens: [continuations[0][0], continuations[1][0]], deadline: deadline)
            var totals = [heads[continuations[0][0]]!, heads[continuations[1][0]]!]
            for (choice, continuation) in continuations.enumerated() {
                for position in continuation.indices.dropFirst() {
                    let token = continuation[position]
                    totals[choice] += try await nextTokenLogprobs(
                        context: shared + continuation[..<position], tokens: [token], deadline: deadline)[token]!
                }
            }
            return (totals[0], totals[1])
        case .completions:
            async let first = promptLogprob(shared: shared, continuation: continuations[0], deadline: deadline)
            async let second = promptLogprob(shared: shared, continuation: continuations[1], deadline: deadline)
            return try await (first, second)
        }
    }

    /// vLLM: the continuation's log-probability from `prompt_logprobs` over shared + continuation.
    func promptLogprob(shared: [Int], continuation: [Int], deadline: ContinuousClock.Instant) async throws -> Double {
        let tokens = shared + continuation
        let body = CompletionsRequest(
            model: servedModel, prompt: tokens, maxTokens: 1, seed: 0, temperature: 0, topP: 1, topK: nil, minP: 0,
            repetitionPenalty: 1, stop: [], promptLogprobs: 0)
        let response = try await call { try await client.post("/v1/completions", body, as: CompletionsResponse.self, deadline: deadline) }
        guard let scores = response.choices.first?.promptLogprobs, scores.count == tokens.count else {
            throw ClusterError(
                .backendRejected,
                "\(client.root)/v1/completions did not return a log-probability per prompt token (prompt_logprobs, a vLLM extension); use --judge-mode generate with this server"
            )
        }
        var total = 0.0
        for position in shared.count..<tokens.count {
            guard let score = scores[position]?[String(tokens[position])] else {
                throw ClusterError(.backendUnavailable, "\(client.root) left out prompt token \(position)'s log-probability")
            }
            total += score.logprob
        }
        return total
    }

    /// llama.cpp: the log-probabilities of `tokens` after `context`, from the top log-probabilities
    /// of one generated token (raw logits), asked again with the whole vocabulary when one of them
    /// is not among the first ones.
    func nextTokenLogprobs(context: [Int], tokens: [Int], deadline: ContinuousClock.Instant) async throws -> [Int: Double] {
        for count in [Self.verdictTopLogprobs, vocabularySize] {
            let body = LlamaCompletionRequest(
                prompt: context, nPredict: 1, seed: 0, temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, repeatLastN: 0,
                stop: [],
                nProbs: count)
            let response = try await call {
                try await client.post("/completion", body, as: LlamaCompletionResponse.self, deadline: deadline)
            }
            guard let top = response.completionProbabilities?.first?.topLogprobs else {
                throw ClusterError(.backendUnavailable, "\(client.root)/completion returned no log-probabilities (n_probs)")
            }
            var found: [Int: Double] = [:]
            for candidate in top where tokens.contains(candidate.id) { found[candidate.id] = candidate.logprob }
            if found.count == Set(tokens).count { return found }
            if top.count >= vocabularySize { break }
        }
        throw ClusterError(.backendRejected, "\(client.root) gave no log-probability for tokens \(tokens) even over the whole vocabulary")
    }

    // MARK: Metrics

    /// Counts a server call's outcome (ok, or the error code it became).
    private func call<T>(_ work: () async throws -> T) async throws -> T {
        do {
            let value = try await work()
            calls.withLock { $0["ok", default: 0] += 1 }
            return value
        } catch let error as ClusterError {
            calls.withLock { $0[ClusterError.name(error.code), default: 0] += 1 }
            throw error
        }
    }

    public func registerMetrics(on metrics: Metrics) {
        metrics.counter(
            "stagebeam_worker_backend_calls_total",
            "HTTP calls to the inference server by outcome (ok, overloaded, deadline_exceeded, backend_unavailable, …)."
        ) { [self] in
            calls.withLock { $0.sorted { $0.key < $1.key }.map { ([("outcome", $0.key)], Double($0.value)) } }
        }
        let slots = Double(slots)
        metrics.gauge("stagebeam_worker_backend_slots", "Requests the inference server runs at once.") { [([], slots)] }
    }
}

/// What the server says about itself.
struct Probe {
    var dialect: OpenAIBackend.Dialect
    var servedModel: String
    /// llama.cpp's total slots (nil for other servers).
    var slots: Int?
    /// A slot's context (llama.cpp), nil when unknown.
    var contextTokens: Int?

    static func run(_ client: OpenAIClient, configuration: OpenAIBackend.Configuration) async throws -> Probe {
        // llama.cpp's server answers /props (503 while it loads the model: wait for it); others do not have it.
        let patience = ContinuousClock.now + configuration.timeout
        var props: LlamaProps?
        while true {
            let (status, body): (HTTPResponseStatus, Data)
            do {
                (status, body) = try await client.fetch("/props", method: .GET, deadline: .now + .seconds(30))
            } catch let error as ClusterError {
                throw unreachable(client, error)
            }
            if status == .serviceUnavailable && ContinuousClock.now < patience {
                try await Task.sleep(for: .seconds(1))
                continue
            }
            if status == .ok { props = OpenAIClient.decode(LlamaProps.self, body) }
            break
        }
        let servedModel: String
        if let name = configuration.servedModel {
            servedModel = name
        } else {
            let models: ModelList
            do {
                models = try await client.get("/v1/models", as: ModelList.self, timeout: .seconds(30))
            } catch let error as ClusterError {
                throw unreachable(client, error)
            }
            guard let first = models.data.first else {
                throw ClusterError(.invalidArgument, "\(client.root)/v1/models lists no model; name one with --backend-model")
            }
            servedModel = first.id
        }
        return Probe(
            dialect: props == nil ? .completions : .llamaCpp, servedModel: servedModel, slots: props?.totalSlots,
            contextTokens: props?.defaultGenerationSettings?.nCtx)
    }

    private static func unreachable(_ client: OpenAIClient, _ error: ClusterError) -> ClusterError {
        ClusterError(.invalidArgument, "cannot use the inference server at \(client.root): \(error.message)")
    }
}
