import Synchronization

/// Prompt tokens of a job's generate requests, as the workers that answered them counted
/// (`JobCounts.candidate_prompt_tokens`; the judge's are in the search's costs), and the tokens its
/// generate-mode judges wrote.
final class JobUsage: Sendable {
    struct Counts: Sendable {
        var promptTokens: UInt64 = 0
        var reusedPrefixTokens: UInt64 = 0
        /// Tokens generate-mode judges wrote (`JobCounts.judge_generated_tokens`).
        var judgeGeneratedTokens: UInt64 = 0
    }

    private let counts = Mutex(Counts())

    var current: Counts { counts.withLock { $0 } }

    func add(prompt: UInt32, reused: UInt32) {
        counts.withLock {
            $0.promptTokens += UInt64(prompt)
            $0.reusedPrefixTokens += UInt64(reused)
        }
    }

    func addJudge(generated: UInt32) {
        counts.withLock { $0.judgeGeneratedTokens += UInt64(generated) }
    }
}
