import Cluster
import Foundation
import Synchronization
import Wire

/// One job submitted on its own client, read as a sequence: its events, then its outcome (a failed
/// job is a `ClusterError`). Each HTTP request gets its own, since a `Client` serves one request at
/// a time. One reader at a time calls `next()`.
final class JobRun: Sendable {
    enum Item: Sendable {
        case event(Stagebeam_V1_JobEvent)
        case finished(Result<Stagebeam_V1_JobResult, any Error>)
    }

    private struct Queue {
        var items: [Item] = []
        var ended = false
        var reader: CheckedContinuation<Item?, Never>?
        /// Run once the outcome is known.
        var onFinished: [@Sendable () -> Void] = []
    }

    let jobID: String
    private let queue = Mutex(Queue())
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(submit: Stagebeam_V1_SubmitJob, client: Client) {
        var job = submit
        if job.jobID.isEmpty { job.jobID = UUID().uuidString.lowercased() }
        jobID = job.jobID
        let submitted = job
        task.withLock { task in
            task = Task { [self] in
                do {
                    let result = try await client.submit(submitted) { event in self.deliver(.event(event)) }
                    deliver(.finished(result.status == .succeeded ? .success(result) : .failure(ClusterError(result.error))))
                } catch {
                    deliver(.finished(.failure(error)))
                }
                deliver(nil)
                client.close()
            }
        }
    }

    /// The next event or the outcome; nil after the outcome. Cancelling the reading task stops
    /// waiting for the job (its outcome is then a `CancellationError`).
    func next() async -> Item? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { reader in
                queue.withLock { queue in
                    if !queue.items.isEmpty {
                        reader.resume(returning: queue.items.removeFirst())
                    } else if queue.ended {
                        reader.resume(returning: nil)
                    } else {
                        queue.reader = reader
                    }
                }
            }
        } onCancel: {
            cancel()
        }
    }

    /// Whether the job's outcome is known.
    var isFinished: Bool { queue.withLock { $0.ended } }

    /// Runs `body` once the job's outcome is known (at once when it is).
    func onFinished(_ body: @escaping @Sendable () -> Void) {
        let now = queue.withLock { queue in
            if !queue.ended { queue.onFinished.append(body) }
            return queue.ended
        }
        if now { body() }
    }

    /// Stops waiting for the job (the HTTP client went away): the client closes, saying goodbye, and
    /// the coordinator cancels the job, which nobody else waits for.
    func cancel() {
        task.withLock { $0?.cancel() }
    }

    /// Hands `item` to a waiting reader or queues it; nil marks the end.
    private func deliver(_ item: Item?) {
        let finished: [@Sendable () -> Void] = queue.withLock { queue in
            if let reader = queue.reader {
                queue.reader = nil
                reader.resume(returning: item)
            } else if let item {
                queue.items.append(item)
            }
            guard item == nil else { return [] }
            queue.ended = true
            defer { queue.onFinished = [] }
            return queue.onFinished
        }
        for body in finished { body() }
    }
}
