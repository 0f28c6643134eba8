import ArgumentParser
import Cluster
import Foundation
import Jobs
import Search
import Transport
import Wire

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a question to a coordinator, print progress as it comes, then the answer.")

    @Option(help: "The coordinator's endpoint, e.g. tcp://127.0.0.1:5555.")
    var coordinator: String
    @OptionGroup var curve: ClientCurveOptions
    @OptionGroup var connect: ConnectOptions
    @OptionGroup var logging: LogOptions
    @Option(help: "The question.")
    var question: String
    @Option(help: "An image file (PNG/JPEG) the question is about.")
    var image: String?
    @OptionGroup var search: SearchOptions
    @Option(
        name: .customLong("reward-templates"),
        help:
            "stage-beam, swires: a self-reward templates JSON file replacing the built-in wording (the reward workers' self-reward reads it)."
    )
    var rewardTemplates: String?
    @Option(name: .customLong("job-id"), help: "Job id; submitting the same id again returns that job's result (default: a fresh id).")
    var jobID: String?
    @Flag(help: "Print the result as JSON instead of text.")
    var json = false
    @Option(
        name: .customLong("timeout-s"),
        help: "Give up after this many seconds (0: wait as long as the job takes); the coordinator then cancels the job.")
    var timeoutS = 0.0
    @Option(
        name: .customLong("deadline-s"),
        help: "The job fails with deadline_exceeded when it has not finished this many seconds after the coordinator accepted it.")
    var deadlineS: Double?
    @Flag(
        name: .customLong("record-search"),
        help: "With --json: include the full search record (every candidate and comparison) under \"search\".")
    var recordSearch = false
    @Flag(
        name: .customLong("stream-tokens"),
        help: """
            Print the candidates' text on standard error while workers generate it (a line per piece: stage, candidate, \
            attempt, new text), also with --json.
            """)
    var streamTokens = false

    @Option(
        name: .customLong("expected-answer"),
        help: "Grade the answer against this one, as `stagebeam eval` grades (the conclusion's last word), and say right or wrong.")
    var expectedAnswer: String?

    func run() async throws {
        try logging.bootstrap()
        var submit = search.choices.submitJob(question: question, seed: search.seed)
        submit.jobID = jobID ?? ""
        if let deadlineS {
            guard deadlineS > 0 else { throw ValidationError("--deadline-s must be > 0") }
            submit.deadlineMs = deadlineS * 1000
        }
        submit.streamEvents = !json || streamTokens
        submit.streamCandidateText = streamTokens
        // The text form prints the whole staged answer, which only the record holds.
        submit.recordSearch = recordSearch || !json
        if let path = search.judgeTemplates {
            _ = try search.templates() // refuse a bad file here, with its own error
            submit.judgeTemplatesJson = try readFile(path, what: "--judge-templates")
        }
        if let path = rewardTemplates {
            _ = try RewardTemplates(contentsOf: URL(fileURLWithPath: path)) // refuse a bad file here, with its own error
            submit.rewardTemplatesJson = try readFile(path, what: "--reward-templates")
        }
        if let image {
            submit.image = try readFile(image, what: "--image")
            // On the wire an empty image means a text-only question; refuse it as `run` does.
            if submit.image.isEmpty { throw InputFileError("--image \(image): no image bytes (empty file)") }
        }
        try await connect.check(coordinator, curve: try curve.role())
        let client = try Client(context: ZMQContext(), endpoint: coordinator, curve: try curve.role())
        let job = submit
        let timeout: Duration? = timeoutS > 0 ? .milliseconds(Int64(timeoutS * 1000)) : nil
        let quiet = json
        let result = try await withTimeout(timeout) {
            try await client.submit(job) { event in
                // --json --stream-tokens: the text pieces only.
                if !quiet || event.candidateText.tokenCount > 0 { printError(describe(event)) }
            }
        }
        client.close()
        guard let result else {
            printError("no result from \(coordinator) within \(timeoutS) s")
            Foundation.exit(3)
        }
        if json {
            try printJobJSON(result, includeSearch: recordSearch)
        } else if result.status == .succeeded {
            let record = try SearchResult(jsonData: result.searchRecordJson)
            print(record.text)
            print()
            print("answer: \(result.answer)")
            if let expectedAnswer {
                // Graded as `eval` grades: the answer (the conclusion's text without its tags).
                let verdict = Grading.isCorrect(conclusion: result.answer, reference: expectedAnswer) ? "right" : "wrong"
                print("expected: \(expectedAnswer) · \(verdict)")
            }
        }
        printError(summary(result))
        if result.status != .succeeded {
            if !json { printError("job \(result.jobID) failed: \(ClusterError(result.error))") }
            throw ExitCode(1)
        }
    }
}

/// One line per job event, for a person watching.
func describe(_ event: Stagebeam_V1_JobEvent) -> String {
    let stage = stageName(event.stage)
    switch event.kind {
    case .stageStarted(let started): return "▸ \(stage) · \(started.candidates) candidate(s)"
    case .candidatesReady(let ready):
        let workers = Set(ready.candidates.map(\.workerID)).sorted().joined(separator: ", ")
        let forced = ready.candidates.filter(\.forcedClose).count
        let note = forced > 0 ? " (\(forced) reached the stage's token budget; the search closed their tag)" : ""
        return "  \(ready.candidates.count) \(stage) candidates from \(workers)" + note
    case .verdict(let verdict):
        let how =
            switch verdict.choice {
            case .unspecified: " (identical texts: no judge call)"
            case .unparsable: " (the verdict named neither: the lower index wins)"
            default: ""
            }
        return "  match: \(verdict.firstIndex) vs \(verdict.secondIndex) → \(verdict.winnerIndex)\(how)"
    case .winner(let winner): return "  \(stage) winner: candidate \(winner.index)"
    case .candidateText(let text):
        // A higher attempt replaces the candidate's earlier text (its first worker was lost).
        let attempt = text.attempt > 1 ? " attempt \(text.attempt)" : ""
        let escaped = text.text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
        return "  \(stage) candidate \(text.index)\(attempt) (\(text.tokenCount) tokens): \(escaped)"
    case .scored(let scored):
        let scores = zip(scored.indices, scored.scores).map { "\($0): " + String(format: "%.3f", $1) }.joined(separator: ", ")
        return "  \(stage) scores: \(scores)"
    case .survivors(let survivors): return "  \(stage) survivors: \(survivors.indices.map(String.init).joined(separator: ", "))"
    case .retraced(let retraced):
        return String(
            format: "  retrace %d: best %@ score %.3f below the threshold %.3f; now %.3f", retraced.attempt, stage, retraced.bestBefore,
            retraced.threshold, retraced.bestAfter)
    case nil: return "  (event)"
    }
}

func stageName(_ stage: Stagebeam_V1_Stage) -> String {
    switch stage {
    case .summary: "summary"
    case .caption: "caption"
    case .reasoning: "reasoning"
    case .conclusion: "conclusion"
    case .answer: "answer"
    default: "stage"
    }
}

func summary(_ result: Stagebeam_V1_JobResult) -> String {
    let c = result.counts
    return String(
        format: "job %@ · %@ · %d candidates · %d judge calls · %d re-dispatched · queued %.0f ms · total %.1f s",
        result.jobID, statusName(result.status), c.candidates, c.judgeCalls,
        c.redispatchedRequests, result.queueMs, result.totalMs / 1000)
}

/// The `--json` output of `submit`: the job result, with the search record (the same JSON as
/// `stagebeam run --json`) under "search" when asked for.
func printJobJSON(_ result: Stagebeam_V1_JobResult, includeSearch: Bool) throws {
    var object: [String: Any] = [
        "job_id": result.jobID,
        "status": statusName(result.status),
        "answer": result.answer,
        "stages": result.stages.map { stage -> [String: Any] in
            [
                "stage": stageName(stage.stage), "step": stage.step, "text": stage.text, "candidates": stage.candidates,
                "comparisons": stage.comparisons, "forced_close": stage.forcedClose,
                "generate_ms": stage.generateMs, "judge_ms": stage.judgeMs
            ]
        },
        "counts": [
            "candidates": result.counts.candidates, "generated_tokens": result.counts.generatedTokens,
            "judge_calls": result.counts.judgeCalls, "unparsable_verdicts": result.counts.unparsableVerdicts,
            "redispatched_requests": result.counts.redispatchedRequests, "candidate_prompt_tokens": result.counts.candidatePromptTokens,
            "candidate_reused_prefix_tokens": result.counts.candidateReusedPrefixTokens,
            "judge_prompt_tokens": result.counts.judgePromptTokens,
            "judge_reused_prefix_tokens": result.counts.judgeReusedPrefixTokens,
            "judge_generated_tokens": result.counts.judgeGeneratedTokens, "score_calls": result.counts.scoreCalls,
            "scored_candidates": result.counts.scoredCandidates, "retraces": result.counts.retraces
        ],
        "queue_ms": result.queueMs,
        "total_ms": result.totalMs,
        // Why the same job might not give the same answer again (server-backed workers); empty: it will.
        "determinism_caveats": result.determinismCaveats
    ]
    if result.hasError {
        object["error"] = ["code": ClusterError.name(result.error.code), "message": result.error.message]
    }
    if result.hasSettings {
        // What the job ran with, the fields it left unset filled by the coordinator.
        let config = SearchConfig(submit: result.settings)
        object["settings"] = [
            "method": config.method.rawValue, "beam": config.beam, "search_stages": config.searchStages.map(\.rawValue),
            "tournament": config.tournament.rawValue,
            "judge_mode": config.judgeMode.rawValue, "temperature": config.sampling.temperature,
            "judge_temperature": config.judgeSampling.temperature, "top_p": config.sampling.topP,
            "max_stage_tokens": config.maxStageTokens, "judge_max_tokens": config.judgeMaxTokens, "seed": config.seed,
            "candidates": config.candidates, "keep": config.keep, "retraces": config.retraces
        ]
    }
    if !result.rewardModelHash.isEmpty {
        object["reward_model_hash"] = result.rewardModelHash
        object["winner_score"] = result.winnerScore
    }
    if includeSearch, !result.searchRecordJson.isEmpty {
        object["search"] = try JSONSerialization.jsonObject(with: result.searchRecordJson)
    }
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}

/// A finished job's status as `submit` prints it.
func statusName(_ status: Stagebeam_V1_JobStatus) -> String {
    switch status {
    case .succeeded: "succeeded"
    case .cancelled: "cancelled"
    default: "failed"
    }
}
