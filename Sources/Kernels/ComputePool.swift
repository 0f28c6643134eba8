import Foundation

/// Splits loops across a fixed set of threads that live as long as the pool. Every kernel goes
/// through one pool, so the engine never oversubscribes the cores, and a parallel loop allocates
/// nothing (Dispatch's `concurrentPerform` allocates on every call, i.e. dozens of times per token).
public final class ComputePool: @unchecked Sendable {
    public let threads: Int
    private let crew: Crew
    private let serializer = NSLock()

    public init(threads: Int) {
        precondition(threads >= 1, "a compute pool needs at least one thread")
        self.threads = threads
        crew = Crew(workers: threads - 1)
    }

    deinit { crew.stop() }

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
            let run: (Int) -> Void = { chunk in
                guard chunk < chunks else { return }
                let start = min(count, (units * chunk / chunks) * granularity)
                let end = min(count, (units * (chunk + 1) / chunks) * granularity)
                if start < end { body(chunk, start, end) }
            }
            // One loop at a time: callers on different threads take turns.
            serializer.lock()
            crew.run(run)
            serializer.unlock()
        }
    }
}

/// The worker threads and their hand-off. Threads hold the crew, not the pool, so the pool can be
/// released at any time; its deinit tells them to exit.
private final class Crew: @unchecked Sendable {
    /// One wake-up per worker, so each runs its own chunk exactly once per loop.
    private let starts: [DispatchSemaphore]
    private let done = DispatchSemaphore(value: 0)
    /// The loop being run; set only while `run` waits for the workers to finish it.
    private var job: ((Int) -> Void)?
    private var stopping = false

    init(workers: Int) {
        starts = (0..<workers).map { _ in DispatchSemaphore(value: 0) }
        for worker in 0..<workers {
            let thread = Thread { [self] in self.loop(worker) }
            thread.name = "stagebeam.compute.\(worker + 1)"
            thread.start()
        }
    }

    /// Runs `job(0)` here and `job(1…)` on the workers; returns when all are done.
    func run(_ job: @escaping (Int) -> Void) {
        self.job = job
        for start in starts { start.signal() }
        job(0)
        for _ in starts { done.wait() }
        self.job = nil
    }

    func stop() {
        stopping = true
        for start in starts { start.signal() }
    }

    private func loop(_ worker: Int) {
        while true {
            starts[worker].wait()
            if stopping { return }
            job?(worker + 1)
            done.signal()
        }
    }
}
