import Cluster
import Foundation
import Generation
import LocalEngine
import Search
import Synchronization
import Wire

/// What serves a worker's reward role: the scorer `stagebeam run` uses for `stage-beam` and
/// `swires`, so a job's scores do not depend on whether it ran in one process or on a cluster —
/// self-reward on the worker's own engine, or a sequence-classification reward model
/// (`worker --reward-model`), which is a checkpoint of its own with its own identity.
///
/// Reward requests are batched: each is prepared (tokenized) as it arrives, then every request
/// waiting when the engine is free is scored in one engine call (one per image, for self-reward:
/// the prompts of a call share their images). An idle worker starts the first request at once;
/// those that arrive meanwhile make up the next batch. Batch-invariant kernels give every
/// candidate the score it gets alone, bit for bit.
public final class WorkerScorer: Sendable {
    enum Kind: Sendable {
        /// The policy model on the worker's engine (`EngineScorer`).
        case selfReward(WorkerEngine)
        /// The policy model on an inference server (`OpenAIBackend.selfRewardScores`).
        case serverSelfReward(OpenAIBackend)
        case rewardModel(RewardModelScorer)
    }

    private let kind: Kind
    /// The scorer's name as reward calibrations record it (`Ready.reward_scorer`).
    public let scorerName: String
    /// The identity of the model whose scores these are (`Ready.reward_model_hash`).
    public let modelHash: String
    /// The reward model's name for logs and status (`Ready.reward_model_name`).
    public let modelName: String
    /// Self-reward on the policy model, or a sequence-classification checkpoint (`Ready.reward_model_kind`).
    public let modelKind: Stagebeam_V1_RewardModelKind
    /// Longest input in tokens.
    public let contextTokens: Int
    /// The most candidates one engine pass ends on: the bound of a reward-only worker's `--max-batch`.
    public let maxSamples: Int
    /// Whether images travel to it (a reward model reads text only: the coordinator may still send
    /// the job's image, which it then ignores).
    let readsImages: Bool
    private let queue = Mutex(Queue())
    /// Engine batches scored so far (for metrics).
    private let counts = Mutex(BatchCounts())

    /// Self-reward on `engine`, the model the worker generates and judges with.
    public init(selfReward engine: WorkerEngine) {
        kind = .selfReward(engine)
        scorerName = RewardCalibration.selfReward
        modelHash = engine.modelHash
        modelName = engine.modelName
        modelKind = .selfReward
        contextTokens = engine.contextTokens
        maxSamples = engine.maxSamples
        readsImages = true
    }

    /// Self-reward on the model an inference server serves (`worker --backend openai`): the same
    /// prompts as on the engine, each candidate one server call, all of a request's at once. The
    /// server takes no images: a request that carries one is refused (`readsImages`: it is never
    /// scored without its image).
    public init(selfReward backend: OpenAIBackend) {
        kind = .serverSelfReward(backend)
        scorerName = RewardCalibration.selfReward
        modelHash = backend.modelHash
        modelName = backend.modelName
        modelKind = .selfReward
        contextTokens = backend.contextTokens
        maxSamples = backend.slots
        readsImages = true
    }

    /// The reward model at `url`, loaded as `stagebeam run --reward-model` loads it.
    public init(rewardModel scorer: RewardModelScorer, url: URL) throws {
        kind = .rewardModel(scorer)
        modelName = url.standardizedFileURL.lastPathComponent
        scorerName = "reward-model:" + modelName
        modelHash = try ModelIdentity.compute(model: url)
        modelKind = .sequenceClassification
        contextTokens = scorer.model.contextLength
        maxSamples = scorer.model.network.maxLogitRows
        readsImages = false
    }

    /// What the logs and `stagebeam status` say the reward model is.
    public var description: String {
        switch modelKind {
        case .selfReward: "self-reward on the policy model \(modelName)"
        default: "sequence-classification reward model \(modelName)"
        }
    }

    /// The wire's request as the search's `ScoreRequest`: each candidate's text after its prefix.
    static func scoreRequest(_ request: Stagebeam_V1_RewardRequest, imageRef: String?) throws -> ScoreRequest {
        guard let topic = JudgeTopic(wire: request.stage) else {
            throw ClusterError(.invalidArgument, "reward request \(request.requestID) names no stage")
        }
        if let problem = problem(in: request) { throw ClusterError(.invalidArgument, problem) }
        let answers = request.candidates.map { request.assistantPrefixes[Int($0.prefixIndex)] + $0.text }
        return ScoreRequest(
            topic: topic, question: request.question, imageRef: imageRef, answers: answers, verification: request.verification,
            verdictPrefix: request.verdictPrefix, choices: request.choices)
    }

    /// What makes `request` unscorable whatever the model: no candidates, or a candidate naming a
    /// prefix the request does not carry; nil when it is well formed.
    static func problem(in request: Stagebeam_V1_RewardRequest) -> String? {
        if request.candidates.isEmpty { return "reward request \(request.requestID) has no candidates to score" }
        guard JudgeTopic(wire: request.stage) != nil else { return "reward request \(request.requestID) names no stage" }
        let prefixes = request.assistantPrefixes.count
        if let (index, candidate) = request.candidates.enumerated().first(where: { Int($0.element.prefixIndex) >= prefixes }) {
            return "reward request \(request.requestID): candidate \(index) names prefix \(candidate.prefixIndex), "
                + "but the request carries \(prefixes) prefix\(prefixes == 1 ? "" : "es")"
        }
        return nil
    }

    /// Scores `request` with the others waiting for the engine. `deadline`: work not started by
    /// then is refused with `deadline_exceeded`; a request stopped (`control`) before its batch
    /// starts is refused with `cancelled`.
    func score(
        _ request: Stagebeam_V1_RewardRequest, image: PromptImage?, deadline: ContinuousClock.Instant?, control: GenerationControl
    ) async throws -> Stagebeam_V1_RewardResult {
        let input: Input
        switch kind {
        case .serverSelfReward(let backend):
            return try await scoreOnServer(request, backend: backend, image: image, deadline: deadline, control: control)
        case .selfReward(let engine):
            // The engine's scorer, given just this request's image (the worker's own cache holds the rest).
            let images = ImageStore()
            if let image { images.put(image.data, hash: image.hash) }
            let scorer = EngineScorer(executor: engine.executor, prompt: engine.prompt, images: images)
            input = .selfReward(try scorer.prepare(try Self.scoreRequest(request, imageRef: image?.hash)))
        case .rewardModel(let scorer):
            let answers = try Self.scoreRequest(request, imageRef: nil).answers
            let tokens = try answers.map { try scorer.tokens(question: request.question, answer: $0) }
            input = .rewardModel(tokens: tokens, fits: tokens.map { !$0.isEmpty && $0.count <= scorer.model.contextLength })
        }
        let scored = try await withCheckedThrowingContinuation { continuation in
            let start = queue.withLock { queue in
                queue.waiting.append(
                    Waiting(requestID: request.requestID, input: input, deadline: deadline, control: control, continuation: continuation))
                defer { queue.draining = true }
                return !queue.draining
            }
            if start { Task { await drain() } }
        }
        var result = Stagebeam_V1_RewardResult()
        result.requestID = request.requestID
        result.jobID = request.jobID
        result.rewardModelHash = modelHash
        result.scores = scored.scores
        result.promptTokens = UInt32(clamping: scored.promptTokens)
        result.reusedPrefixTokens = UInt32(clamping: scored.reusedTokens)
        result.prefillMs = scored.seconds * 1000
        result.batchRequests = UInt32(clamping: scored.batchRequests)
        result.batchCandidates = UInt32(clamping: scored.batchCandidates)
        return result
    }

    /// Self-reward on an inference server: no queue of its own (the server batches the calls), so a
    /// request starts at once unless it is already past its deadline or stopped.
    private func scoreOnServer(
        _ request: Stagebeam_V1_RewardRequest, backend: OpenAIBackend, image: PromptImage?, deadline: ContinuousClock.Instant?,
        control: GenerationControl
    ) async throws -> Stagebeam_V1_RewardResult {
        let id = request.requestID
        if image != nil {
            throw ClusterError(.invalidArgument, backend.imageRefusal ?? "this worker's server takes no images", requestID: id)
        }
        if let deadline, ContinuousClock.now > deadline {
            throw ClusterError(.deadlineExceeded, "request \(id) waited past its deadline before it could start", requestID: id)
        }
        if control.isStopped { throw ClusterError(.cancelled, "request \(id) was stopped", requestID: id) }
        let started = ContinuousClock.now
        let scored = try await backend.selfRewardScores(try Self.scoreRequest(request, imageRef: nil), deadline: deadline)
        var result = Stagebeam_V1_RewardResult()
        result.requestID = request.requestID
        result.jobID = request.jobID
        result.rewardModelHash = modelHash
        result.scores = scored.scores
        result.promptTokens = UInt32(clamping: scored.promptTokens)
        result.prefillMs = milliseconds(ContinuousClock.now - started)
        result.batchRequests = 1
        result.batchCandidates = UInt32(clamping: scored.scores.filter { $0 > -.infinity }.count)
        counts.withLock {
            $0.batches += 1
            $0.requests += 1
            $0.candidates += Int(result.batchCandidates)
        }
        return result
    }

    /// Engine batches and the requests and candidates they held, since the worker started.
    func batchCounts() -> BatchCounts { counts.withLock { $0 } }

    // MARK: Batching

    /// A request's candidates as the engine takes them.
    enum Input: Sendable {
        case selfReward(PreparedScores)
        /// The reward model's tokens per candidate, and whether each fits its context.
        case rewardModel(tokens: [[Int]], fits: [Bool])

        /// The inputs the engine runs (those that fit).
        var fittingCount: Int {
            switch self {
            case .selfReward(let prepared): prepared.fits.filter { $0 }.count
            case .rewardModel(_, let fits): fits.filter { $0 }.count
            }
        }
    }

    /// What one request got from its engine batch.
    struct Scored: Sendable {
        var scores: [Double]
        var promptTokens: Int
        var reusedTokens: Int
        var batchRequests: Int
        var batchCandidates: Int
        var seconds: Double
    }

    struct BatchCounts: Sendable {
        var batches = 0
        var requests = 0
        var candidates = 0
    }

    private struct Waiting: Sendable {
        let requestID: String
        let input: Input
        let deadline: ContinuousClock.Instant?
        let control: GenerationControl
        let continuation: CheckedContinuation<Scored, any Error>
    }

    private struct Queue {
        var waiting: [Waiting] = []
        /// A task is taking batches to the engine until none is left.
        var draining = false
    }

    private func drain() async {
        do {
            var more = true
            while more {
                // The batch is taken on the engine's queue, when the engine is free: the requests that
                // arrived while it served others (generate, judge, an earlier batch) all join it.
                switch kind {
                case .selfReward(let engine): more = try await engine.executor.run { self.scoreWaiting(on: $0) }
                case .serverSelfReward: preconditionFailure("a server scores without the queue")
                case .rewardModel(let scorer): more = try await scorer.run { self.scoreWaiting(on: $0) }
                }
            }
        } catch {
            preconditionFailure("a reward batch answers each of its requests and throws nothing: \(error)")
        }
    }

    /// The requests waiting, less those that must not start (past their deadline, or stopped), which
    /// are answered here; nil when none was waiting (draining then ends).
    private func takeWaiting() -> [Waiting]? {
        let taken: [Waiting]? = queue.withLock { queue in
            guard !queue.waiting.isEmpty else {
                queue.draining = false
                return nil
            }
            defer { queue.waiting = [] }
            return queue.waiting
        }
        guard let taken else { return nil }
        let now = ContinuousClock.now
        var starting: [Waiting] = []
        for entry in taken {
            let id = entry.requestID
            if let deadline = entry.deadline, now > deadline {
                entry.continuation.resume(
                    throwing: ClusterError(
                        .deadlineExceeded, "request \(id) waited past its deadline before it could start", requestID: id))
            } else if entry.control.isStopped {
                entry.continuation.resume(throwing: ClusterError(.cancelled, "request \(id) was stopped", requestID: id))
            } else {
                starting.append(entry)
            }
        }
        return starting
    }

    /// On the engine's queue: scores every request waiting, one call per image. False when none was waiting.
    private func scoreWaiting(on generator: TextGenerator) -> Bool {
        guard let batch = takeWaiting() else { return false }
        var groups: [[(entry: Waiting, prepared: PreparedScores)]] = []
        var groupOfImage: [String: Int] = [:]
        for entry in batch {
            guard case .selfReward(let prepared) = entry.input else {
                preconditionFailure("a self-reward scorer prepares self-reward input")
            }
            let image = prepared.images.first?.hash ?? ""
            if let group = groupOfImage[image] {
                groups[group].append((entry, prepared))
            } else {
                groupOfImage[image] = groups.count
                groups.append([(entry, prepared)])
            }
        }
        for group in groups {
            let run = { (members: [(entry: Waiting, prepared: PreparedScores)]) throws -> [Scored] in
                let fitting = members.flatMap(\.prepared.fitting)
                let started = ContinuousClock.now
                // No prompt fits: every score is −∞ and the engine has nothing to run.
                let scored =
                    fitting.isEmpty
                    ? (logprobs: [], cachedTokensByPrompt: [])
                    : try generator.scoreContinuations(fitting, images: members[0].prepared.images).byPrompt
                let seconds = milliseconds(ContinuousClock.now - started) / 1000
                var offset = 0
                return members.map { member in
                    let own = member.prepared.fitting
                    let range = offset..<(offset + own.count)
                    offset += own.count
                    return Scored(
                        scores: member.prepared.scores(Array(scored.logprobs[range])),
                        // Tokens read: each prompt and every continuation token after its first.
                        promptTokens: own.reduce(0) { total, item in
                            total + item.prompt.count + item.continuations.reduce(0) { $0 + max($1.count - 1, 0) }
                        },
                        reusedTokens: scored.cachedTokensByPrompt[range].reduce(0, +), batchRequests: members.count,
                        batchCandidates: fitting.count, seconds: seconds)
                }
            }
            answer(group.map(\.entry), scoredTogether: { try run(group) }, alone: { k in try run([group[k]])[0] })
        }
        return true
    }

    /// On the reward model's queue: scores every request waiting in one call. False when none was waiting.
    private func scoreWaiting(on model: RewardModel) -> Bool {
        guard let batch = takeWaiting() else { return false }
        let run = { (members: [Waiting]) throws -> [Scored] in
            let inputs = members.map { member -> (tokens: [[Int]], fits: [Bool]) in
                guard case .rewardModel(let tokens, let fits) = member.input else {
                    preconditionFailure("a reward-model scorer prepares reward-model input")
                }
                return (tokens, fits)
            }
            let fitting = inputs.flatMap { zip($0.tokens, $0.fits).filter(\.1).map(\.0) }
            let started = ContinuousClock.now
            let rewards = fitting.isEmpty ? [] : try model.rewards(fitting)
            let seconds = milliseconds(ContinuousClock.now - started) / 1000
            var next = rewards.makeIterator()
            return inputs.map { input in
                Scored(
                    scores: input.fits.map { $0 ? Double(next.next()!) : -.infinity },
                    promptTokens: input.tokens.reduce(0) { $0 + $1.count }, reusedTokens: 0, batchRequests: members.count,
                    batchCandidates: fitting.count, seconds: seconds)
            }
        }
        answer(batch, scoredTogether: { try run(batch) }, alone: { k in try run([batch[k]])[0] })
        return true
    }

    /// Resumes each request of a batch with its scores. When the batch fails as a whole (e.g. the KV
    /// cache has no room for all of it), one request's fault must not fail the others: each is
    /// scored alone, with its own answer or error.
    private func answer(_ members: [Waiting], scoredTogether: () throws -> [Scored], alone: (Int) throws -> Scored) {
        do {
            let scored = try scoredTogether()
            counts.withLock {
                $0.batches += 1
                $0.requests += members.count
                $0.candidates += members.reduce(0) { $0 + $1.input.fittingCount }
            }
            for (member, scores) in zip(members, scored) { member.continuation.resume(returning: scores) }
        } catch {
            guard members.count > 1 else {
                members[0].continuation.resume(throwing: error)
                return
            }
            for k in members.indices {
                let result = Result { try alone(k) }
                if case .success = result {
                    counts.withLock {
                        $0.batches += 1
                        $0.requests += 1
                        $0.candidates += members[k].input.fittingCount
                    }
                }
                members[k].continuation.resume(with: result)
            }
        }
    }
}

extension ContinuationScores {
    /// Per prompt: its continuations' log-probabilities and its tokens reused from the prefix cache.
    fileprivate var byPrompt: (logprobs: [[Double]], cachedTokensByPrompt: [Int]) { (logprobs, cachedTokensByPrompt) }
}
