import CKernels
import Foundation
import Synchronization

/// Work split into chunks across a pool's threads. A class, so handing it to the worker threads
/// passes one reference: the hot path (matmul, attention) keeps one task object per call site and
/// reconfigures it, and so allocates nothing per parallel loop.
public protocol ParallelTask: AnyObject {
    /// Processes `start..<end`; `chunk` (0..<threads) can index per-thread scratch memory.
    func run(chunk: Int, start: Int, end: Int)
}

/// Splits loops across a fixed set of threads that live as long as the pool. Every kernel goes
/// through one pool, so the engine never oversubscribes the cores.
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

    /// Runs `task` on disjoint chunks covering `0..<count`, chunk edges at multiples of
    /// `granularity` (except the last); returns when all chunks are done. Allocates nothing.
    public func run(_ task: ParallelTask, count: Int, granularity: Int = 1) {
        guard count > 0 else { return }
        let units = (count + granularity - 1) / granularity
        let chunks = min(threads, units)
        if chunks <= 1 { task.run(chunk: 0, start: 0, end: count); return }
        // One loop at a time: callers on different threads take turns.
        serializer.lock()
        crew.run(Loop(task: task, count: count, units: units, chunks: chunks, granularity: granularity))
        serializer.unlock()
    }

    /// Closure form of `run` for code off the per-token path: it boxes the closure (one small
    /// allocation per call).
    public func parallelFor(count: Int, granularity: Int = 1, _ body: (Int, Int) -> Void) {
        parallelChunks(count: count, granularity: granularity) { _, start, end in body(start, end) }
    }

    /// `parallelFor` that also passes the chunk's index (0..<threads), for per-thread scratch memory.
    public func parallelChunks(count: Int, granularity: Int = 1, _ body: (Int, Int, Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            run(ClosureTask(body), count: count, granularity: granularity)
        }
    }
}

private final class ClosureTask: ParallelTask {
    let body: (Int, Int, Int) -> Void
    init(_ body: @escaping (Int, Int, Int) -> Void) { self.body = body }
    func run(chunk: Int, start: Int, end: Int) { body(chunk, start, end) }
}

/// One parallel loop over a task.
private struct Loop {
    unowned(unsafe) let task: ParallelTask
    let count, units, chunks, granularity: Int

    func run(chunk: Int) {
        guard chunk < chunks else { return }
        let start = min(count, (units * chunk / chunks) * granularity)
        let end = min(count, (units * (chunk + 1) / chunks) * granularity)
        if start < end { task.run(chunk: chunk, start: start, end: end) }
    }
}

/// The worker threads and their hand-off. Threads hold the crew, not the pool, so the pool can be
/// released at any time; its deinit tells them to exit.
///
/// A decode step of a thin, deep model runs hundreds of short parallel loops (30 layers × several
/// matmuls of a few hundred microseconds), so waking a sleeping thread for each (a futex round trip,
/// tens of microseconds with the scheduler's latency) is a large share of the step. Workers therefore
/// spin on a generation counter for a while after each loop and only then sleep on their semaphore,
/// and the caller spins until the workers' countdown reaches zero.
private final class Crew: @unchecked Sendable {
    /// Spins (each a CPU pause, ~20–40 ns) before an idle worker sleeps: about 0.2–0.4 ms, longer than
    /// the gaps between the loops of one decode step.
    private static let spinsBeforeSleep = 10_000
    /// Bumped to start each loop (and to stop); workers spin on it.
    private let generation = Atomic<Int>(0)
    /// Workers still running the current loop.
    private let remaining = Atomic<Int>(0)
    /// Per worker: whether it went to sleep, and its wake-up.
    private let asleep: [SleepFlag]
    private let wakes: [DispatchSemaphore]
    /// The loop being run: written before the generation moves, read by workers after they see it move.
    private var job: Loop?
    private var stopping = false

    init(workers: Int) {
        asleep = (0..<workers).map { _ in SleepFlag() }
        wakes = (0..<workers).map { _ in DispatchSemaphore(value: 0) }
        for worker in 0..<workers {
            let thread = Thread { [self] in self.loop(worker) }
            thread.name = "stagebeam.compute.\(worker + 1)"
            thread.start()
        }
    }

    /// Runs chunk 0 here and the others on the workers; returns when all are done.
    func run(_ job: Loop) {
        self.job = job
        remaining.store(wakes.count, ordering: .sequentiallyConsistent)
        startLoop()
        job.run(chunk: 0)
        var spins = 0
        while remaining.load(ordering: .sequentiallyConsistent) != 0 {
            spins += 1
            // Past the expected wait a worker has likely lost its core: let it have ours.
            if spins < Self.spinsBeforeSleep { sb_spin_pause() } else { sched_yield() }
        }
        self.job = nil
    }

    func stop() {
        stopping = true
        startLoop()
    }

    /// Moves the generation (workers spinning see it) and wakes the workers that went to sleep.
    private func startLoop() {
        generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
        for worker in 0..<wakes.count where asleep[worker].value.exchange(false, ordering: .sequentiallyConsistent) {
            wakes[worker].signal()
        }
    }

    private func loop(_ worker: Int) {
        let flag = asleep[worker]
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .sequentiallyConsistent) == seen {
                if spins < Self.spinsBeforeSleep {
                    sb_spin_pause()
                    spins += 1
                    continue
                }
                // Announce the sleep, then look again: either the caller saw the flag and signals, or
                // this thread takes the flag back itself — a wake-up is never lost.
                flag.value.store(true, ordering: .sequentiallyConsistent)
                if generation.load(ordering: .sequentiallyConsistent) == seen
                    || !flag.value.exchange(false, ordering: .sequentiallyConsistent)
                {
                    wakes[worker].wait()
                }
                spins = 0
            }
            seen = generation.load(ordering: .sequentiallyConsistent)
            if stopping { return }
            job?.run(chunk: worker + 1)
            remaining.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        }
    }
}

/// One worker's "gone to sleep" flag: an `Atomic` cannot be an array element, so a class holds it.
private final class SleepFlag: Sendable {
    let value = Atomic<Bool>(false)
}
