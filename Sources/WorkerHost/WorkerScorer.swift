import Cluster
import Foundation
import Generation
import LocalEngine
import Search
import Wire

/// What serves a worker's reward role: the scorer `stagebeam run` uses for `stage-beam` and
/// `swires`, so a job's scores do not depend on whether it ran in one process or on a cluster —
/// self-reward on the worker's own engine, or a sequence-classification reward model
/// (`worker --reward-model DIR`), which is a checkpoint of its own with its own identity.
///
/// A request's candidates are scored as one batch (one teacher-forced pass over them all).
public final class WorkerScorer: Sendable {
    enum Kind: Sendable {
        /// The policy model on the worker's engine (`EngineScorer`).
        case selfReward(WorkerEngine)
        case rewardModel(RewardModelScorer)
    }

    private let kind: Kind
    /// The scorer's name as reward calibrations record it (`Ready.reward_scorer`).
    public let scorerName: String
    /// The identity of the model whose scores these are (`Ready.reward_model_hash`).
    public let modelHash: String
    /// Whether images travel to it (a reward model reads text only: the coordinator may still send
    /// the job's image, which it then ignores).
    let readsImages: Bool

    /// Self-reward on `engine`, the model the worker generates and judges with.
    public init(selfReward engine: WorkerEngine) {
        kind = .selfReward(engine)
        scorerName = RewardCalibration.selfReward
        modelHash = engine.modelHash
        readsImages = true
    }

    /// The reward model at `url`, loaded as `stagebeam run --reward-model` loads it.
    public init(rewardModel scorer: RewardModelScorer, url: URL) throws {
        kind = .rewardModel(scorer)
        scorerName = "reward-model:" + url.standardizedFileURL.lastPathComponent
        modelHash = try ModelIdentity.compute(model: url)
        readsImages = false
    }

    /// The wire's request as the search's `ScoreRequest`: each candidate's text after its prefix.
    static func scoreRequest(_ request: Stagebeam_V1_RewardRequest, imageRef: String?) throws -> ScoreRequest {
        guard let topic = JudgeTopic(wire: request.stage) else {
            throw ClusterError(.invalidArgument, "reward request \(request.requestID) names no stage")
        }
        let answers = try request.candidates.map { candidate -> String in
            guard Int(candidate.prefixIndex) < request.assistantPrefixes.count else {
                throw ClusterError(
                    .invalidArgument,
                    "reward request \(request.requestID): prefix index \(candidate.prefixIndex) with \(request.assistantPrefixes.count) prefixes"
                )
            }
            return request.assistantPrefixes[Int(candidate.prefixIndex)] + candidate.text
        }
        return ScoreRequest(
            topic: topic, question: request.question, imageRef: imageRef, answers: answers, verification: request.verification,
            verdictPrefix: request.verdictPrefix, choices: request.choices)
    }

    /// `deadline`: work not started by then is refused with `deadline_exceeded`.
    func score(_ request: Stagebeam_V1_RewardRequest, image: PromptImage?, deadline: ContinuousClock.Instant?) async throws
        -> Stagebeam_V1_RewardResult
    {
        if let deadline, ContinuousClock.now > deadline {
            throw ClusterError(
                .deadlineExceeded, "request \(request.requestID) waited past its deadline before it could start",
                requestID: request.requestID)
        }
        var result = Stagebeam_V1_RewardResult()
        result.requestID = request.requestID
        result.jobID = request.jobID
        result.rewardModelHash = modelHash
        let start = ContinuousClock.now
        switch kind {
        case .selfReward(let engine):
            // The engine's scorer, given just this request's image (the worker's own cache holds the rest).
            let images = ImageStore()
            if let image { images.put(image.data, hash: image.hash) }
            let scorer = EngineScorer(executor: engine.executor, prompt: engine.prompt, images: images)
            let scored = try await scorer.scoreWithCounts(try Self.scoreRequest(request, imageRef: image?.hash))
            result.scores = scored.scores
            result.promptTokens = UInt32(clamping: scored.cachedTokens + scored.computedTokens)
            result.reusedPrefixTokens = UInt32(clamping: scored.cachedTokens)
        case .rewardModel(let scorer):
            let scoreRequest = try Self.scoreRequest(request, imageRef: nil)
            result.scores = try await scorer.score(scoreRequest)
            result.promptTokens = UInt32(
                clamping: try scoreRequest.answers.reduce(0) { $0 + (try scorer.tokens(question: request.question, answer: $1).count) })
        }
        result.prefillMs = milliseconds(ContinuousClock.now - start)
        return result
    }
}
