import Cluster
import Foundation
import Generation
import Wire

/// What serves a worker's requests: the in-process engine (`WorkerEngine`) or an inference server
/// behind an OpenAI-compatible API (`OpenAIBackend`). The worker announces what this says in its
/// `Ready` and hands it every request it accepts, off the link's thread.
public protocol WorkerBackend: Sendable {
    /// Model name for logs and status.
    var modelName: String { get }
    /// The identity the coordinator compares across workers (`Ready.model_hash`).
    var modelHash: String { get }
    /// The model's stagebeam.json (empty when it has none).
    var recommendationsJSON: Data { get }
    /// Longest prompt + generation, in tokens.
    var contextTokens: Int { get }
    /// The most sequences one worker may be given at once (the bound of `--max-batch`).
    var maxSamples: Int { get }
    /// Why a request with an image is refused, or nil when images are served.
    var imageRefusal: String? { get }
    /// Empty when the same request (same seeds) always gives the same tokens on this backend;
    /// otherwise why not (`Ready.determinism_caveat`).
    var determinismCaveat: String { get }
    /// A line describing what serves the requests, for `Ready.backend` and logs ("" for the in-process engine).
    var backendDescription: String { get }

    /// `deadline`: work not done by then is abandoned (the coordinator has already sent it elsewhere).
    /// `control`: the worker's handle on the request — stopped when the coordinator sends
    /// StopRequests (the serving task is cancelled too), and reporting the candidates' text when the
    /// request asks for progress. A backend that cannot report text leaves it unread; the worker
    /// answers a stopped request with `cancelled` whatever this returns.
    func generate(
        _ request: Stagebeam_V1_GenerateRequest, image: PromptImage?, deadline: ContinuousClock.Instant?, control: GenerationControl
    ) async throws -> Stagebeam_V1_GenerateResult
    func judge(_ request: Stagebeam_V1_JudgeRequest, image: PromptImage?, deadline: ContinuousClock.Instant?) async throws
        -> Stagebeam_V1_JudgeResult
    /// Declares the backend's own gauges and counters (KV cache figures, server calls).
    func registerMetrics(on metrics: Metrics)
}

extension WorkerBackend {
    /// A request nobody stops or watches.
    public func generate(_ request: Stagebeam_V1_GenerateRequest, image: PromptImage?, deadline: ContinuousClock.Instant?) async throws
        -> Stagebeam_V1_GenerateResult
    {
        try await generate(request, image: image, deadline: deadline, control: GenerationControl())
    }
}
