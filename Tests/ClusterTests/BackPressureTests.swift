import ClusterTestSupport
import Foundation
import Search
import Synchronization
import Testing
import Transport
import Wire

@testable import Cluster

/// A burst of submissions from one peer: the coordinator keeps a bounded queue (the rest are refused
/// with `overloaded`, naming the limit), journals the accepted ones in groups off its socket thread,
/// keeps answering its worker's heartbeats, and answers every accepted job exactly once.
@Suite(.serialized) struct BackPressureTests {
    private final class Replies: Sendable {
        let state = Mutex((accepted: Set<String>(), refused: [String: String](), results: [String: Int]()))
    }

    @Test func burstIsBoundedAndWorkersStayAlive() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch, liveness: 3, coordinatorArguments: ["--max-queued-jobs", "8"])
        try cluster.addWorker("w1", maxBatch: 4)
        let context = try ZMQContext()
        let codec = EnvelopeCodec()
        let replies = Replies()
        let peer = try SocketLoop(
            context: context,
            configuration: .init(kind: .dealer, connect: [cluster.endpoint], routingID: Array("burst".utf8), highWaterMark: 0),
            handlers: .init(onMessage: { frames in
                guard frames.count == 1, let body = try? codec.decode(frames[0]) else { return }
                replies.state.withLock { state in
                    switch body {
                    case .jobAccepted(let accepted): state.accepted.insert(accepted.jobID)
                    case .error(let error): state.refused[error.jobID] = "\(ClusterError.name(error.code)): \(error.message)"
                    case .jobResult(let result): state.results[result.jobID, default: 0] += 1
                    default: break
                    }
                }
            }))
        defer { peer.close() }
        let count = 2000
        for index in 0..<count {
            let job = TestJob(question: "Burst \(index): how many legs does a spider have?", beam: 1, maxStageTokens: 3, seed: index)
            var submit = job.submitJob(id: "burst-\(index)")
            submit.recordSearch = false
            try peer.send([try codec.encode(.submitJob(submit))])
        }
        // Every submission is answered: accepted (and later one result each) or refused.
        let deadline = Date().addingTimeInterval(120)
        func settled() -> Bool {
            replies.state.withLock { state in
                state.accepted.count + state.refused.count == count && state.accepted.allSatisfy { state.results[$0] != nil }
            }
        }
        while Date() < deadline, !settled() { usleep(20_000) }
        let state = replies.state.withLock { $0 }
        #expect(state.accepted.count + state.refused.count == count)
        #expect(state.accepted.count >= 8)
        #expect(state.accepted.isDisjoint(with: state.refused.keys))
        #expect(state.accepted.allSatisfy { state.results[$0] == 1 }, "every accepted job answered once")
        #expect(!state.refused.isEmpty)
        let reasons = Set(state.refused.values)
        #expect(reasons.allSatisfy { $0.hasPrefix("overloaded:") && $0.contains("--max-queued-jobs 8") }, "\(reasons.prefix(3))")
        // Heartbeats kept flowing through the burst: the worker was never declared lost.
        #expect(cluster.coordinator.logged("worker lost").isEmpty)
        #expect(cluster.registrations(of: "w1") == 1)
    }
}
