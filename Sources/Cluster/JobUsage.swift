import Synchronization

/// Prompt tokens of a job's requests, as the workers that answered them counted (`JobCounts`).
final class JobUsage: Sendable {
    struct Counts: Sendable {
        var promptTokens: UInt64 = 0
        var reusedPrefixTokens: UInt64 = 0
        var judgePromptTokens: UInt64 = 0
    }

    private let counts = Mutex(Counts())

    var current: Counts { counts.withLock { $0 } }

    func add(prompt: UInt32, reused: UInt32) {
        counts.withLock {
            $0.promptTokens += UInt64(prompt)
            $0.reusedPrefixTokens += UInt64(reused)
        }
    }

    func add(judgePrompt: UInt32) {
        counts.withLock { $0.judgePromptTokens += UInt64(judgePrompt) }
    }
}
