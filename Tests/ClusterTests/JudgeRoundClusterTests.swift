import Cluster
import ClusterTestSupport
import Foundation
import Testing
import Transport
import Wire

/// A bracket round's judge calls on a cluster of real processes: several matches per judge request,
/// spread over the judge workers, give the verdicts and the search record of `stagebeam run`, on one
/// judge worker or three, and when a judge worker is SIGKILLed holding part of a round.
@Suite(.serialized) struct JudgeRoundClusterTests {
    /// Beam 8: the first round of each tournament has up to 4 matches.
    static let job = TestJob(question: "Name three primary colours.", beam: 8, seed: 21)

    @Test func oneAndThreeJudgeWorkersGiveTheVerdictsOfTheInProcessRun() throws {
        let scratch = try Scratch()
        let reference = try JudgeOutcome(record: Self.job.runInProcess(in: scratch))
        #expect(reference.judgedMatches >= 4, "the job must judge whole rounds")

        let single = try LocalCluster(scratch: scratch)
        try single.addWorker("gen", maxBatch: 8, roles: "generate")
        let solo = try single.addWorker("judge", maxBatch: 8, roles: "judge")
        let one = try single.submit(Self.job)
        #expect(try JudgeOutcome(submitted: one) == reference)
        // The round's matches went out together: a judge request of several matches.
        #expect(solo.logged("work done", ["kind": "judge"]).contains { Int("\($0["n"] ?? "")") ?? 0 > 1 })

        let triple = try LocalCluster(scratch: Scratch())
        try triple.addWorker("gen", maxBatch: 8, roles: "generate")
        let judges = try ["j1", "j2", "j3"].map { try triple.addWorker($0, maxBatch: 8, roles: "judge") }
        let three = try triple.submit(Self.job)
        #expect(try JudgeOutcome(submitted: three) == reference)
        // A round of 3 or 4 matches was spread over all three judge workers.
        #expect(judges.allSatisfy { !$0.logged("work done", ["kind": "judge"]).isEmpty })
    }

    /// The victim is frozen (SIGSTOP) before the job starts, so its share of the first judge round is
    /// certainly in flight when it is killed; that share misses its deadline and goes to the survivor
    /// (liveness is long, so that the frozen victim is still registered when the round is sent,
    /// however slow a loaded machine makes the first stage). Generate-mode verdicts: the survivor
    /// decodes the re-sent matches in a batch of another make-up than the first attempt, and they
    /// must come out the same.
    @Test func judgeWorkerKilledMidRoundGivesTheVerdictsOfTheInProcessRun() async throws {
        var job = Self.job
        job.judgeMode = "generate"
        job.judgeMaxTokens = 6
        let scratch = try Scratch()
        let reference = try JudgeOutcome(record: job.runInProcess(in: scratch))
        #expect(reference.judgedMatches >= 4, "the job must judge whole rounds")

        let cluster = try LocalCluster(
            scratch: scratch, liveness: 600, requestTimeoutS: 8, coordinatorArguments: ["--log-level", "debug"])
        try cluster.addWorker("gen", maxBatch: 8, roles: "generate")
        let victim = try cluster.addWorker("victim", maxBatch: 8, roles: "judge")
        try cluster.addWorker("survivor", maxBatch: 8, roles: "judge")
        let client = try Client(context: ZMQContext(), endpoint: cluster.endpoint)
        defer { client.close() }

        victim.signal(SIGSTOP)
        async let finished = client.submit(job.submitJob(id: "judge-kill"))
        _ = try await cluster.coordinator.arriving("a judge request sent to the victim", timeout: 90) { coordinator in
            coordinator.logged("request sent", ["kind": "judge", "worker_id": "victim"]).first
        }
        victim.signal(SIGKILL)
        let result = try await finished

        #expect(result.status == .succeeded, "\(result.error)")
        let record = try parseJSON(String(decoding: result.searchRecordJson, as: UTF8.self))
        #expect(try JudgeOutcome(record: record) == reference)
        #expect(result.counts.redispatchedRequests >= 1)
        #expect(victim.logged("work done").isEmpty, "the frozen victim never answered")
        #expect(!cluster.coordinator.logged("request re-dispatched", ["worker_id": "victim", "kind": "judge"]).isEmpty)
    }
}

/// What must not depend on where the judge calls ran: the search's outcome (`SearchOutcome`), and
/// every match of every tournament with its judge calls' seeds, replies and verdicts (not their costs).
struct JudgeOutcome: Equatable, CustomStringConvertible {
    let search: SearchOutcome
    let matches: [String]

    init(record: [String: Any]) throws {
        search = try SearchOutcome(record: record)
        var matches: [String] = []
        for stage in record["stages"] as? [[String: Any]] ?? [] {
            for unit in stage["units"] as? [[String: Any]] ?? [] {
                let tournament = unit["tournament"] as? [String: Any] ?? [:]
                for match in tournament["matches"] as? [[String: Any]] ?? [] {
                    var match = match
                    let calls = (match["calls"] as? [[String: Any]] ?? []).map { call in
                        var call = call
                        call["cost"] = nil
                        return call
                    }
                    match["calls"] = calls
                    let data = try JSONSerialization.data(withJSONObject: match, options: [.sortedKeys])
                    matches.append("\(stage["stage"] ?? "") \(String(decoding: data, as: UTF8.self))")
                }
            }
        }
        self.matches = matches
    }

    init(submitted: [String: Any]) throws {
        guard let search = submitted["search"] as? [String: Any] else {
            throw ChildProcessError("submit output has no search record: \(submitted.keys.sorted())")
        }
        try self.init(record: search)
    }

    /// Matches decided by a judge call (not between identical texts).
    var judgedMatches: Int { matches.filter { $0.contains("\"reply\"") }.count }

    var description: String { "\(search)\nmatches:\n\(matches.joined(separator: "\n"))" }
}
