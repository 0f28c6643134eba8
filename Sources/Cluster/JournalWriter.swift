import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The journal's writer thread: appends wait in a queue, and the thread writes everything queued
/// since its last write with one `write` and, when any of it must be durable, one `fsync` (group
/// commit), then tells each durable append's caller. A burst of submissions therefore costs a few
/// fsyncs instead of one each, and none of them on the coordinator's socket thread, whose
/// heartbeats must not wait on the disk.
final class JournalWriter: Sendable {
    enum Work: Sendable {
        case append(Data, durable: Bool, done: (@Sendable (Error?) -> Void)?)
        /// Runs on the writer thread after everything queued before it was written.
        case exclusive(@Sendable (inout Int32) -> Void)
    }

    private struct Queue {
        var work: [Work] = []
        var closing = false
    }

    let path: String
    private let queue = Mutex(Queue())
    /// The descriptor appended to. Only the writer thread touches it once the thread runs (the
    /// lock is never contended: it makes that confinement something the compiler can check).
    private let file: Mutex<Int32>
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let thread = Mutex<pthread_t?>(nil)
    /// Records written and fsyncs made (for tests and metrics: the ratio is the group size).
    let counters = Mutex((records: 0, syncs: 0))

    init(fd: Int32, path: String) {
        self.path = path
        file = Mutex(fd)
        let thread = Thread { [self] in run() }
        thread.name = "journal-writer"
        thread.start()
    }

    /// Queues work; fails it at once when the writer is closed.
    func enqueue(_ work: Work) {
        let accepted = queue.withLock { queue in
            guard !queue.closing else { return false }
            queue.work.append(work)
            return true
        }
        if accepted {
            wake.signal()
        } else if case .append(_, _, let done?) = work {
            done(ClusterError(.internal, "journal \(path) is closed"))
        }
    }

    /// Writes what is queued, then the thread closes the file and ends. Idempotent.
    func close() {
        let first = queue.withLock { queue in
            defer { queue.closing = true }
            return !queue.closing
        }
        guard first else { return }
        wake.signal()
        // A completion may release the last owner of the journal on the writer thread itself: the
        // thread then ends after the batch it is in, without waiting for itself.
        if thread.withLock({ $0.map { pthread_equal($0, pthread_self()) != 0 } ?? false }) { return }
        stopped.wait()
    }

    private func run() {
        thread.withLock { $0 = pthread_self() }
        while true {
            wake.wait()
            let (batch, closing) = queue.withLock { queue in
                defer { queue.work = [] }
                return (queue.work, queue.closing)
            }
            var appends: [(Data, Bool, (@Sendable (Error?) -> Void)?)] = []
            for work in batch {
                switch work {
                case .append(let data, let durable, let done): appends.append((data, durable, done))
                case .exclusive(let body):
                    write(appends)
                    appends = []
                    file.withLock { body(&$0) }
                }
            }
            write(appends)
            if closing {
                file.withLock { _ = Glibc.close($0) }
                stopped.signal()
                return
            }
        }
    }

    private func write(_ appends: [(Data, Bool, (@Sendable (Error?) -> Void)?)]) {
        guard !appends.isEmpty else { return }
        var data = Data()
        for (bytes, _, _) in appends { data.append(bytes) }
        let durable = appends.contains { $0.1 }
        var failure: Error?
        file.withLock { fd in
            do {
                try Self.writeAll(data, to: fd, path: path)
                if durable && fsync(fd) != 0 {
                    throw ClusterError(.internal, "cannot fsync journal \(path): \(String(cString: strerror(errno)))")
                }
            } catch {
                failure = error
            }
        }
        counters.withLock {
            $0.records += appends.count
            if durable { $0.syncs += 1 }
        }
        for (_, _, done) in appends { done?(failure) }
    }

    /// O_APPEND: each write lands at the end; one writer thread keeps lines from interleaving.
    static func writeAll(_ data: Data, to fd: Int32, path: String) throws {
        var written = 0
        while written < data.count {
            let n = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, data.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ClusterError(.internal, "cannot write journal \(path): \(String(cString: strerror(errno)))") }
            written += n
        }
    }
}

/// A value another thread hands over once: `wait` blocks until `fulfill`.
final class Awaited<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    func fulfill(_ result: Value) {
        value.withLock { $0 = result }
        ready.signal()
    }

    func wait() -> Value {
        ready.wait()
        return value.withLock { $0 }!
    }
}
