import ChatTemplates
import Cluster
import Foundation
import Generation
import LocalEngine
import ModelFormats
import Search
import Tokenization
import Vision
import Wire

/// A worker's model: serves the wire's generate and judge requests on the in-process engine, with
/// exactly the engine calls `stagebeam run` makes, so a job's answer does not depend on whether it
/// ran in one process or on a cluster.
public final class WorkerEngine: WorkerBackend {
    public let executor: EngineExecutor
    /// The engine's candidate generator and judge, as `stagebeam run` builds them.
    let candidates: EngineCandidateGenerator
    let prompt: ChatPrompt
    let stopTokenIds: Set<Int>
    public let modelName: String
    public let modelHash: String
    /// The model's stagebeam.json, announced to the coordinator (empty when it has none).
    public let recommendationsJSON: Data
    /// The model's context in tokens.
    public let contextTokens: Int
    /// The most sequences the engine decodes in one batch.
    public let maxSamples: Int
    /// Whether the model takes images (LLaVA, Llama 3.2 Vision); a text-only model refuses requests with images.
    public let takesImages: Bool
    public var imageRefusal: String? { takesImages ? nil : "model \(modelName) is a text-only checkpoint and cannot take images" }
    /// Batch-invariant kernels and per-sample seeded samplers: the same seeds give the same tokens.
    public var determinismCaveat: String { "" }
    public var backendDescription: String { "" }
    /// KV cache and image-feature figures after each request (for metrics).
    let stats = EngineStats()
    /// Judge requests that arrive together go to the engine as one batch.
    let judgeBatcher: JudgeBatcher

    /// `generator` runs `model` (`model.makeGenerator`). `chatTemplate` replaces the checkpoint's own
    /// (`--chat-template`), as for `stagebeam run`.
    public init(model: LoadedModel, generator: TextGenerator, chatTemplate: ChatTemplate? = nil) throws {
        executor = EngineExecutor(generator: generator)
        prompt = try ChatPrompt(tokenizer: generator.tokenizer, template: chatTemplate)
        stopTokenIds = generator.eosTokenIds(generationConfig: model.generationConfig)
        candidates = EngineCandidateGenerator(executor: executor, prompt: prompt, stopTokenIds: stopTokenIds)
        judgeBatcher = JudgeBatcher(executor: executor, prompt: prompt, stopTokenIds: stopTokenIds)
        modelName = model.url.standardizedFileURL.lastPathComponent
        modelHash = try ModelIdentity.compute(
            model: model.url, chatTemplate: chatTemplate?.source, kvCacheType: generator.kvCacheType.rawValue)
        // Read and checked here, so a bad file stops the worker instead of every job.
        _ = try ModelRecommendations(model: model.url)
        let recommendations = ModelRecommendations.file(ofModel: model.url)
        recommendationsJSON = FileManager.default.fileExists(atPath: recommendations.path) ? try Data(contentsOf: recommendations) : Data()
        contextTokens = generator.contextLength
        maxSamples = generator.maxSamples
        takesImages = generator.takesImages
    }

    /// `deadline`: work not started by then is refused with `deadline_exceeded` (the coordinator has
    /// already sent it elsewhere).
    /// `EngineCandidateGenerator.generate`, which `stagebeam run` uses, with the engine's timings.
    public func generate(
        _ request: Stagebeam_V1_GenerateRequest, image: PromptImage?,
        deadline: ContinuousClock.Instant?, control: GenerationControl
    ) async throws -> Stagebeam_V1_GenerateResult {
        let images = image.map { [$0] } ?? []
        var generation = try candidates.engineRequest(
            GenerateRequest(
                question: request.question, imageRef: image?.hash, assistantPrefix: request.assistantPrefix, seeds: request.seeds,
                stop: request.stop, maxNewTokens: request.maxNewTokens == 0 ? Self.defaultMaxNewTokens : Int(request.maxNewTokens),
                sampling: Sampling(wire: request.sampling)), images: images)
        generation.control = control
        let stats = self.stats
        let output = try await executor.run { [generation] generator in
            try Self.check(deadline, request.requestID)
            // Stopped while it waited for the engine: it never starts.
            if control.isStopped {
                throw ClusterError(.cancelled, "request \(request.requestID) was stopped", requestID: request.requestID)
            }
            let output = try generator.generate(generation)
            // Read on the engine's queue: the cache is not thread-safe.
            stats.record(
                kvUsedTokens: generator.cache.usedBlocks * generator.cache.blockSize, images: images.count,
                imageSeconds: output.timings.imageSeconds,
                cachedPromptTokens: output.timings.cachedPromptTokens, prefillTokens: output.timings.prefillTokens)
            return output
        }
        var result = Stagebeam_V1_GenerateResult()
        result.requestID = request.requestID
        result.jobID = request.jobID
        result.candidates = zip(output.samples, request.seeds).map { sample, seed in
            var candidate = Stagebeam_V1_GeneratedCandidate()
            candidate.text = sample.text
            candidate.tokenCount = UInt32(sample.tokenIds.count)
            candidate.cumulativeLogprob = sample.cumulativeLogprob
            candidate.finishReason = Search.FinishReason(sample.finishReason).wire
            candidate.seed = seed
            return candidate
        }
        result.promptTokens = UInt32(generation.promptTokens.count)
        result.reusedPrefixTokens = UInt32(output.timings.cachedPromptTokens)
        result.prefillMs = output.timings.prefillSeconds * 1000
        result.decodeMs = output.timings.decodeSeconds * 1000
        return result
    }

    /// A request's matches (the first, and `more_matches`) go to the engine together, as one batch
    /// with whatever other judge requests wait for it (`JudgeBatcher`).
    public func judge(
        _ request: Stagebeam_V1_JudgeRequest, image: PromptImage?,
        deadline: ContinuousClock.Instant?
    ) async throws -> Stagebeam_V1_JudgeResult {
        guard !request.prompt.isEmpty else {
            throw ClusterError(
                .invalidArgument, "judge request \(request.requestID) carries no rendered prompt; this worker judges rendered prompts only")
        }
        guard let topic = JudgeTopic(wire: request.stage) else {
            throw ClusterError(.invalidArgument, "judge request \(request.requestID) names no stage")
        }
        let mode: VerdictMode = request.verdictMode == .generate ? .generate : .logprob
        let matches = request.singleMatches
        let judgeRequests = matches.map { match in
            JudgeRequest(
                topic: topic, imageRef: image?.hash, prompt: match.prompt, mode: mode, verdictPrefix: match.verdictPrefix,
                choices: match.choices,
                maxNewTokens: match.maxVerdictTokens == 0 ? Self.defaultVerdictTokens : Int(match.maxVerdictTokens),
                sampling: Sampling(wire: match.sampling), seed: match.seed)
        }
        try Self.check(deadline, request.requestID)
        let replies = try await judgeBatcher.judge(judgeRequests, image: image)
        if request.moreMatches.isEmpty { return try Self.result(replies[0], answering: request) }
        var result = Stagebeam_V1_JudgeResult()
        result.requestID = request.requestID
        result.jobID = request.jobID
        for (match, reply) in zip(matches, replies) {
            result.matchResults.append(try await Stagebeam_V1_JudgeMatchResult { try Self.result(reply, answering: match) })
        }
        return result
    }

    /// The wire's answer to a single-match request; a prompt too long for the context is the wire's error.
    private static func result(_ measured: MeasuredReply, answering request: Stagebeam_V1_JudgeRequest) throws -> Stagebeam_V1_JudgeResult {
        var result = Stagebeam_V1_JudgeResult()
        result.requestID = request.requestID
        result.jobID = request.jobID
        if let cost = measured.cost {
            result.promptTokens = UInt32(clamping: cost.promptTokens)
            result.reusedPrefixTokens = UInt32(clamping: cost.reusedPromptTokens)
            result.prefillMs = cost.prefillSeconds * 1000
            result.decodeMs = cost.decodeSeconds * 1000
            result.generatedTokens = UInt32(clamping: cost.generatedTokens)
        }
        switch measured.reply {
        case .choiceLogprobs(let first, let second):
            result.logprobFirst = first
            result.logprobSecond = second
            if first.isFinite, second.isFinite {
                result.probabilityFirst = 1 / (1 + exp(second - first))
                result.probabilitySecond = 1 - result.probabilityFirst
                result.choice = first > second ? .first : first < second ? .second : .unspecified
            }
        case .verdict(let text):
            // The coordinator parses the verdict with the job's templates.
            result.verdictText = text
        case .promptTooLong(let message):
            // Sent as the wire's error; the coordinator's dispatcher turns it back into this reply.
            throw ClusterError(.promptTooLong, message)
        }
        return result
    }

    static let defaultMaxNewTokens = 512
    static let defaultVerdictTokens = SearchConfig().judgeMaxTokens

    private static func check(_ deadline: ContinuousClock.Instant?, _ id: String) throws {
        if let deadline, ContinuousClock.now > deadline {
            throw ClusterError(.deadlineExceeded, "request \(id) waited past its deadline before it could start", requestID: id)
        }
    }

    /// The wire error for a failure of the engine.
    public static func wireError(_ error: any Error, requestID: String, jobID: String) -> ClusterError {
        var cluster: ClusterError
        switch error {
        case let error as ClusterError: cluster = error
        case let error as GenerationError:
            switch error.code {
            case .promptTooLong: cluster = ClusterError(.promptTooLong, error.message)
            // The engine runs one call at a time and empties its prefix cache before refusing, so
            // this worker cannot serve the request at all; one with a larger cache may.
            case .cacheFull: cluster = ClusterError(.kvCacheTooSmall, error.message)
            case .invalidParameter, .emptyPrompt: cluster = ClusterError(.invalidArgument, error.message)
            }
        case let error as LocalEngineError: cluster = ClusterError(.invalidArgument, error.description)
        // The job's image is at fault, not this worker: another worker would fail the same way.
        case let error as VisionError where error.code == .tooLarge: cluster = ClusterError(.imageTooLarge, error.message)
        case let error as VisionError where error.code != .badProcessorConfig: cluster = ClusterError(.badImage, error.message)
        default: cluster = ClusterError(.internal, "\(error)")
        }
        cluster.requestID = requestID
        cluster.jobID = jobID
        return cluster
    }
}

/// Judge requests waiting for the engine, sent to it together: a bracket round's matches that the
/// coordinator sends to this worker (in one request, or in several arriving together) decode as one
/// batch (`EngineJudge.judgeBatch`, batch-invariant, so each verdict is what it would be alone). An
/// idle worker starts the first request at once; the requests that arrive while a batch runs make up
/// the next one.
actor JudgeBatcher {
    private struct Waiting {
        let requests: [JudgeRequest]
        let image: PromptImage?
        let continuation: CheckedContinuation<[MeasuredReply], any Error>
    }

    private let executor: EngineExecutor
    private let prompt: ChatPrompt
    private let stopTokenIds: Set<Int>
    private var waiting: [Waiting] = []
    private var draining = false

    init(executor: EngineExecutor, prompt: ChatPrompt, stopTokenIds: Set<Int>) {
        self.executor = executor
        self.prompt = prompt
        self.stopTokenIds = stopTokenIds
    }

    /// The replies to `requests` (one judge request's matches), which join the next batch together.
    func judge(_ requests: [JudgeRequest], image: PromptImage?) async throws -> [MeasuredReply] {
        try await withCheckedThrowingContinuation { continuation in
            waiting.append(Waiting(requests: requests, image: image, continuation: continuation))
            if !draining {
                draining = true
                Task { await drain() }
            }
        }
    }

    private func drain() async {
        while !waiting.isEmpty {
            let batch = waiting
            waiting = []
            // The engine's judge, given just this batch's images (the worker's own cache holds the rest).
            let images = ImageStore()
            for image in Set(batch.compactMap(\.image?.hash)) {
                if let data = batch.first(where: { $0.image?.hash == image })?.image?.data { images.put(data, hash: image) }
            }
            let judge = EngineJudge(executor: executor, prompt: prompt, stopTokenIds: stopTokenIds, images: images)
            do {
                var replies = try await judge.judgeBatch(batch.flatMap(\.requests))[...]
                for entry in batch {
                    entry.continuation.resume(returning: Array(replies.prefix(entry.requests.count)))
                    replies = replies.dropFirst(entry.requests.count)
                }
            } catch {
                // One request's fault must not fail the others: each alone, with its own answer or error.
                for entry in batch {
                    do {
                        entry.continuation.resume(returning: try await judge.judgeBatch(entry.requests))
                    } catch {
                        entry.continuation.resume(throwing: error)
                    }
                }
            }
        }
        draining = false
    }
}
