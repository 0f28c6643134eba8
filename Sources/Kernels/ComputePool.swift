import Foundation

/// Splits loops across a fixed number of threads. Every kernel goes through one pool so the
/// engine never oversubscribes the cores (OpenBLAS, when used, is pinned to one thread per call).
public final class ComputePool: @unchecked Sendable {
    public let threads: Int

    public init(threads: Int) {
        precondition(threads >= 1, "a compute pool needs at least one thread")
        self.threads = threads
    }

    /// All cores the process may use; replaced by `--threads`.
    nonisolated(unsafe) public static var shared = ComputePool(threads: ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body(start, end)` on disjoint chunks covering `0..<count`; chunk edges are multiples
    /// of `granularity` (except the last). Returns when all chunks are done.
    public func parallelFor(count: Int, granularity: Int = 1, _ body: (Int, Int) -> Void) {
        parallelChunks(count: count, granularity: granularity) { _, start, end in body(start, end) }
    }

    /// Like `parallelFor`, also passing the chunk's index (`0..<threads`), so a chunk can use
    /// per-thread scratch memory allocated once by the caller.
    public func parallelChunks(count: Int, granularity: Int = 1, _ body: (Int, Int, Int) -> Void) {
        guard count > 0 else { return }
        let units = (count + granularity - 1) / granularity
        let chunks = min(threads, units)
        if chunks <= 1 { body(0, 0, count); return }
        withoutActuallyEscaping(body) { body in
            // Chunks touch disjoint memory by contract, which the type system cannot see.
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = min(count, (units * chunk / chunks) * granularity)
                let end = min(count, (units * (chunk + 1) / chunks) * granularity)
                if start < end { shared.value(chunk, start, end) }
            }
        }
    }
}

private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
