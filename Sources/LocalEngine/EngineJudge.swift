import Generation
import Search

/// The search's `Judge` on the in-process engine.
/// - `logprob` mode: one teacher-forced pass scores each choice string after the verdict prefix.
/// - `generate` mode: the verdict is sampled with the request's seed and returned as text.
public struct EngineJudge: Judge {
    public let executor: EngineExecutor
    public let prompt: ChatPrompt
    public let stopTokenIds: Set<Int>
    public let images: ImageStore

    public init(executor: EngineExecutor, prompt: ChatPrompt, stopTokenIds: Set<Int>, images: ImageStore = ImageStore()) {
        self.executor = executor
        self.prompt = prompt
        self.stopTokenIds = stopTokenIds
        self.images = images
    }

    public func judge(_ request: JudgeRequest) async throws -> JudgeReply {
        try await judgeMeasured(request).reply
    }

    public func judgeMeasured(_ request: JudgeRequest) async throws -> MeasuredReply {
        do {
            return try await verdict(request)
        } catch let error as GenerationError where error.code == .promptTooLong {
            return MeasuredReply(reply: .promptTooLong(message: error.message), cost: nil)
        }
    }

    /// A batch of comparisons in one trip to the engine: generate-mode verdicts decode together (one
    /// batched forward pass per step, at most the engine's sample limit at a time), logprob verdicts
    /// one after another. Batch-invariant kernels give each reply what `judgeMeasured` gives alone.
    public func judgeBatch(_ requests: [JudgeRequest]) async throws -> [MeasuredReply] {
        if requests.count == 1 { return [try await judgeMeasured(requests[0])] }
        var replies = [MeasuredReply?](repeating: nil, count: requests.count)
        var verdicts: [(index: Int, generation: GenerationRequest)] = []
        for (k, request) in requests.enumerated() {
            switch request.mode {
            case .logprob:
                replies[k] = try await judgeMeasured(request)
            case .generate:
                let generation = try verdictRequest(request)
                if generation.promptTokens.count >= executor.generator.contextLength {
                    // The engine refuses it as too long: alone, so that it does not fail the batch.
                    replies[k] = try await judgeMeasured(request)
                } else {
                    verdicts.append((k, generation))
                }
            }
        }
        let limit = max(executor.generator.maxSamples, 1)
        for start in stride(from: 0, to: verdicts.count, by: limit) {
            let chunk = Array(verdicts[start..<min(start + limit, verdicts.count)])
            let outputs: [GenerationOutput]
            do {
                outputs = try await executor.run { try $0.generate(chunk.map(\.generation)) }
            } catch let error as GenerationError where error.code == .cacheFull && chunk.count > 1 {
                // Together they need more KV slots than are free: one at a time, as without batching.
                for sent in chunk { replies[sent.index] = try await judgeMeasured(requests[sent.index]) }
                continue
            }
            for (sent, output) in zip(chunk, outputs) {
                replies[sent.index] = MeasuredReply(
                    reply: .verdict(text: output.samples[0].text),
                    cost: ComputeCost(output.timings, promptTokens: sent.generation.promptTokens.count))
            }
        }
        return replies.map { $0! }
    }

    func verdict(_ request: JudgeRequest) async throws -> MeasuredReply {
        switch request.mode {
        case .logprob:
            guard request.choices.count == 2 else {
                throw LocalEngineError("a logprob verdict needs exactly two choices, got \(request.choices.count)")
            }
            let images = try images.images(for: request.imageRef)
            let (shared, continuations) = try choiceTokens(request, imageCount: images.count)
            let scores = try await executor.run {
                try $0.scoreContinuationsMeasured(prompt: shared, images: images, continuations: continuations)
            }
            return MeasuredReply(
                reply: .choiceLogprobs(first: scores.logprobs[0], second: scores.logprobs[1]),
                // The choices' tokens are scored, not generated.
                cost: ComputeCost(
                    prefillSeconds: scores.timings.prefillSeconds, decodeSeconds: scores.timings.decodeSeconds,
                    promptTokens: shared.count, reusedPromptTokens: scores.timings.cachedPromptTokens))
        case .generate:
            let generation = try verdictRequest(request)
            let output = try await executor.run { try $0.generate(generation) }
            return MeasuredReply(
                reply: .verdict(text: output.samples[0].text),
                cost: ComputeCost(output.timings, promptTokens: generation.promptTokens.count))
        }
    }

    /// The engine's request for a generate-mode verdict: one sample from the request's seed.
    func verdictRequest(_ request: JudgeRequest) throws -> GenerationRequest {
        let images = try images.images(for: request.imageRef)
        let tokens = executor.generator.expandImageTokens(
            try prompt.tokens(user: request.prompt, imageCount: images.count, assistantPrefix: request.verdictPrefix))
        // A verdict cut at the context's end has no choice in it: the referee counts it as unparsable.
        return GenerationRequest(
            promptTokens: tokens, images: images, seeds: [request.seed], sampling: SamplingParameters(request.sampling),
            maxNewTokens: executor.generator.newTokenBudget(request.maxNewTokens, promptTokens: tokens.count),
            stopTokenIds: stopTokenIds)
    }

    /// The shared leading tokens of the two choices' prompts and each choice's own tokens (`ChatPrompt.choiceTokens`).
    func choiceTokens(_ request: JudgeRequest, imageCount: Int) throws -> (shared: [Int], continuations: [[Int]]) {
        try prompt.choiceTokens(
            user: request.prompt, imageCount: imageCount, verdictPrefix: request.verdictPrefix, choices: request.choices,
            expand: executor.generator.expandImageTokens)
    }
}
