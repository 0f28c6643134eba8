import Cluster
import Foundation
import Hummingbird
import Search
import Wire

/// A finished job as an OpenAI `chat.completion`.
struct Completion {
    let id: String
    let model: String
    /// The whole staged answer with its tags, as the search wrote it.
    let content: String
    let usage: [String: Any]

    init(result: Stagebeam_V1_JobResult, model: String) throws(GatewayError) {
        let record: SearchResult
        do {
            record = try SearchResult(jsonData: result.searchRecordJson)
        } catch {
            throw .internalError("the job's search record does not decode: \(error)")
        }
        id = "chatcmpl-\(result.jobID)"
        self.model = model
        content = record.text
        // The returned text's tokens: each unit's winning candidate as generated (the forced opening
        // tags and the blank lines between stages were not generated, so they are not counted).
        let answerTokens = record.stages.flatMap(\.units).reduce(0) { total, unit in
            total + (unit.candidates.first { $0.index == unit.winner }?.tokens ?? 0)
        }
        // OpenAI's `prompt_tokens` (one prompt) has no single value in a search that prompts the
        // model once per request: the job's prompt counts are in the extra field instead.
        usage = [
            "completion_tokens": answerTokens,
            "total_tokens": answerTokens,
            "stagebeam": [
                "job_id": result.jobID,
                "candidate_tokens": result.counts.generatedTokens,
                "candidates": result.counts.candidates,
                "judge_calls": result.counts.judgeCalls,
                "unparsable_verdicts": result.counts.unparsableVerdicts,
                "redispatched_requests": result.counts.redispatchedRequests,
                "candidate_prompt_tokens": result.counts.candidatePromptTokens,
                "candidate_reused_prefix_tokens": result.counts.candidateReusedPrefixTokens,
                "judge_prompt_tokens": result.counts.judgePromptTokens,
                "judge_reused_prefix_tokens": result.counts.judgeReusedPrefixTokens,
                "judge_generated_tokens": result.counts.judgeGeneratedTokens,
                "total_ms": result.totalMs
            ] as [String: Any]
        ]
    }

    var json: [String: Any] {
        [
            "id": id, "object": "chat.completion", "created": Int(Date().timeIntervalSince1970), "model": model,
            "choices": [
                ["index": 0, "message": ["role": "assistant", "content": content], "finish_reason": "stop"] as [String: Any]
            ],
            "usage": usage
        ]
    }
}

/// The text a job event adds to the streamed answer: a stage's chosen text, with its tags, once its
/// tournament is decided. Stage and greedy jobs announce a winner per stage; sentence and best-of-N
/// winners are not whole stages, so their answer is streamed when the job finishes.
enum StageText {
    /// Whether a job of `method` announces whole stages (an unset method is the coordinator's default, stage).
    static func streamsStages(_ method: Stagebeam_V1_Method) -> Bool {
        method == .unspecified || method == .stage || method == .greedy
    }

    static func piece(for event: Stagebeam_V1_JobEvent, after streamed: String) -> String? {
        guard case .winner(let winner) = event.kind, let topic = JudgeTopic(wire: event.stage),
            let stage = Stage(rawValue: topic.rawValue), event.step == UInt32(stage.index)
        else { return nil }
        // The search joins stages with a blank line (`SearchConfig.stageSeparator`).
        let separator = streamed.isEmpty ? "" : SearchConfig().stageSeparator
        return separator + stage.openingTag + winner.text + stage.closingTag
    }
}

/// `chat.completion.chunk` server-sent events of one completion.
struct ChunkWriter {
    let id: String
    let model: String
    let created = Int(Date().timeIntervalSince1970)

    func event(delta: [String: Any], finishReason: String? = nil) -> ByteBuffer {
        let choice: [String: Any] = ["index": 0, "delta": delta, "finish_reason": finishReason ?? NSNull()]
        return Self.data(["id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [choice]])
    }

    /// The last chunk of `stream_options.include_usage`: no choices, the usage.
    func event(usage: [String: Any]) -> ByteBuffer {
        Self.data(["id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": usage])
    }

    static func data(_ object: [String: Any]) -> ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(jsonBytes(object))
        buffer.writeString("\n\n")
        return buffer
    }
}
