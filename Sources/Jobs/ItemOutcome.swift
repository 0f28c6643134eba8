import Cluster
import Foundation
import Search
import Wire

/// One finished item: its output line and the numbers the summary adds up.
public struct ItemOutcome: Sendable {
    public let id: String
    public let succeeded: Bool
    public let generatedTokens: Int
    public let judgeCalls: Int
    public let candidates: Int
    /// The output line (JSON, no newline).
    public let line: Data

    /// The line for `item`, from a job result (a coordinator's, or one made from an in-process search).
    ///
    /// Keys: `id`, `status` (succeeded | failed), `answer`, `stages` (per stage: text, candidates,
    /// comparisons, forced_close, generate_ms, judge_ms), `method`, `beam`, `seed`, `timings`
    /// (total_ms, queue_ms), `counts`, `job_id` (on a coordinator), `reference` (the input's expected answer, if any),
    /// `error` {code, message} for a failed item, and `search` (the full record) when `includeSearch`.
    public init(item: BatchItem, seed: UInt64, config: SearchConfig, result: Stagebeam_V1_JobResult, includeSearch: Bool) {
        id = item.id
        succeeded = result.status == .succeeded
        generatedTokens = Int(result.counts.generatedTokens)
        judgeCalls = Int(result.counts.judgeCalls)
        candidates = Int(result.counts.candidates)
        var object: [String: Any] = [
            "id": item.id,
            "status": succeeded ? "succeeded" : "failed",
            "answer": result.answer,
            "stages": result.stages.map { stage -> [String: Any] in
                [
                    "stage": Self.stageName(stage.stage), "text": stage.text, "candidates": stage.candidates,
                    "comparisons": stage.comparisons, "forced_close": stage.forcedClose,
                    "generate_ms": stage.generateMs, "judge_ms": stage.judgeMs
                ]
            },
            "method": config.method.rawValue,
            "beam": config.beam,
            "search_stages": config.searchStages.map(\.rawValue),
            "seed": seed,
            "timings": ["total_ms": result.totalMs, "queue_ms": result.queueMs],
            "counts": [
                "candidates": result.counts.candidates, "generated_tokens": result.counts.generatedTokens,
                "judge_calls": result.counts.judgeCalls, "unparsable_verdicts": result.counts.unparsableVerdicts,
                "redispatched_requests": result.counts.redispatchedRequests
            ]
        ]
        if !result.jobID.isEmpty { object["job_id"] = result.jobID }
        if let reference = item.reference { object["reference"] = reference }
        if result.hasError {
            object["error"] = ["code": ClusterError.name(result.error.code), "message": result.error.message]
        }
        if includeSearch, !result.searchRecordJson.isEmpty,
            let search = try? JSONSerialization.jsonObject(with: result.searchRecordJson)
        {
            object["search"] = search
        }
        // Every value above is a JSON type, so this cannot fail.
        line = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    /// A failure before the item reached any search (e.g. its image file vanished).
    public init(item: BatchItem, seed: UInt64, config: SearchConfig, failure: ClusterError, totalMs: Double) {
        self.init(
            item: item, seed: seed, config: config,
            result: Stagebeam_V1_JobResult(jobID: "", failure: failure, redispatched: 0, queueMs: 0, totalMs: totalMs),
            includeSearch: false)
    }

    static func stageName(_ stage: Stagebeam_V1_Stage) -> String {
        switch stage {
        case .summary: "summary"
        case .caption: "caption"
        case .reasoning: "reasoning"
        case .conclusion: "conclusion"
        case .answer: "answer"
        default: "unspecified"
        }
    }
}
