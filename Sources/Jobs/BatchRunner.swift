import Foundation

/// Runs a batch: every item not already in the output, at most `concurrency` at once, each line
/// written (durably) as its item finishes, in finishing order.
public enum BatchRunner {
    public static func run(
        items: [BatchItem], output: ResultFile, runner: any ItemRunner, batchSeed: UInt64, concurrency: Int,
        progress: BatchProgress
    ) async throws -> BatchSummary {
        let todo = items.filter { output.finished[$0.id] == nil }
        var summary = BatchSummary(total: items.count, skipped: items.count - todo.count)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: ItemOutcome.self) { group in
            var next = todo.makeIterator()
            func startNext() -> Bool {
                guard let item = next.next() else { return false }
                group.addTask { await runner.run(item, seed: ItemSeed.seed(batch: batchSeed, id: item.id)) }
                return true
            }
            for _ in 0..<max(concurrency, 1) where !startNext() { break }
            while let outcome = try await group.next() {
                try output.append(outcome.line)
                summary.add(outcome)
                progress.finished(outcome)
                _ = startNext()
            }
        }
        let elapsed = (ContinuousClock.now - start).components
        summary.seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
        progress.end()
        return summary
    }
}

/// What a batch run did; `description` is the summary printed at the end.
public struct BatchSummary: Sendable, CustomStringConvertible {
    /// Items in the input (after dropping malformed lines).
    public var total: Int
    /// Already in the output before this run.
    public var skipped: Int
    public var done = 0
    public var failed = 0
    public var generatedTokens = 0
    public var judgeCalls = 0
    public var candidates = 0
    public var seconds = 0.0

    public init(total: Int, skipped: Int) {
        self.total = total
        self.skipped = skipped
    }

    mutating func add(_ outcome: ItemOutcome) {
        done += 1
        if !outcome.succeeded { failed += 1 }
        generatedTokens += outcome.generatedTokens
        judgeCalls += outcome.judgeCalls
        candidates += outcome.candidates
    }

    public var jobsPerSecond: Double { seconds > 0 ? Double(done) / seconds : 0 }
    public var tokensPerSecond: Double { seconds > 0 ? Double(generatedTokens) / seconds : 0 }

    public var description: String {
        String(
            format: "batch: %d item(s), %d already done, %d run now (%d failed) in %.1f s · %.2f jobs/s · "
                + "%d candidates · %d tokens (%.1f tokens/s) · %d judge calls",
            total, skipped, done, failed, seconds, jobsPerSecond, candidates, generatedTokens, tokensPerSecond, judgeCalls)
    }
}
