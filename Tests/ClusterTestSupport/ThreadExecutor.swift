import Foundation
import Synchronization

/// A task executor with a thread of its own, for the tests' in-process servers. The tasks' shared
/// pool has one thread per core (two here), and tests that block while a child process works
/// (polling its log, waiting for its exit) can hold every one of them at once; a server whose
/// tasks ran on that pool would then stall until they let go, and its clients time out.
public final class ThreadExecutor: TaskExecutor {
    /// One thread for the whole test process; it lives as long as the process.
    public static let shared = ThreadExecutor()

    private let jobs = Mutex<[UnownedJob]>([])
    private let waiting = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in
            while true {
                waiting.wait()
                let job = jobs.withLock { $0.removeFirst() }
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        thread.name = "test servers"
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        waiting.signal()
    }
}
