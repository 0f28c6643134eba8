import ClusterTestSupport
import Foundation
import Synchronization
import Testing
import Wire

@testable import Cluster

@Suite struct JournalTests {
    private func submit(_ id: String) -> Stagebeam_V1_SubmitJob {
        var submit = Stagebeam_V1_SubmitJob()
        submit.jobID = id
        submit.question = "question of \(id)"
        submit.beam = 2
        return submit
    }

    @Test func replaysAcceptedAndFinishedJobsInOrder() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("journal.jsonl")
        do {
            let (journal, entries) = try Journal.open(url) { _ in }
            #expect(entries.isEmpty)
            try journal.accepted("one", submit: submit("one")) { _ in }
            try journal.accepted("two", submit: submit("two")) { _ in }
            var result = Stagebeam_V1_JobResult()
            result.jobID = "one"
            result.status = .succeeded
            result.answer = "forty-two"
            try journal.finished("one", result: result) { _ in }
            try journal.step("two", key: "k1", value: Data("[1]".utf8))
        }
        let (_, entries) = try Journal.open(url) { _ in }
        #expect(entries.map(\.id) == ["one", "two"])
        #expect(entries[1].entry.steps == ["k1": Data("[1]".utf8)])
        #expect(entries[0].entry.submit == submit("one"))
        #expect(entries[0].entry.result?.answer == "forty-two")
        #expect(entries[1].entry.result == nil)
    }

    /// A crash mid-write leaves a torn last line: it is skipped (that job counts as unfinished), the
    /// next record starts on a line of its own, and a torn line anywhere else is an error.
    @Test func tornLastLineIsSkippedAndOtherDamageIsAnError() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("journal.jsonl")
        do {
            let (journal, _) = try Journal.open(url) { _ in }
            try journal.accepted("one", submit: submit("one")) { _ in }
        }
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"event\":\"finished\",\"job_id\":\"one\",\"res".utf8))
        try handle.close()
        var warnings: [String] = []
        do {
            let (journal, entries) = try Journal.open(url) { warnings.append($0) }
            #expect(entries.count == 1 && entries[0].entry.result == nil)
            #expect(warnings.count == 1 && warnings[0].contains("torn last line"))
            try journal.accepted("two", submit: submit("two")) { _ in }
        }
        // The torn line is now in the middle: the journal refuses to guess.
        #expect(throws: ClusterError.self) { try Journal.open(url) { _ in } }
    }

    /// Questions and images are private: the journal and its lock are the owner's only, and a
    /// journal left world-readable by an older version is tightened when opened.
    @Test func journalFilesAreOwnerOnly() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("journal.jsonl")
        _ = FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o644])
        let (journal, _) = try Journal.open(url) { _ in }
        try journal.accepted("one", submit: submit("one")) { _ in }
        for path in [url.path, url.path + ".lock"] {
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(path)")
        }
    }

    /// A second holder is refused while the first one lives (flock is per open file, so this holds
    /// within one process too), and the journal is free again once the first one is gone.
    @Test func oneHolderAtATime() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("journal.jsonl")
        do {
            let (first, _) = try Journal.open(url) { _ in }
            let error = #expect(throws: ClusterError.self) { try Journal.open(url) { _ in } }
            #expect(error?.message.contains("in use by another coordinator (pid \(getpid())") == true)
            _ = first
        }
        _ = try Journal.open(url) { _ in }
    }

    /// A second coordinator process on a journal in use exits at once with an error naming the
    /// first one's pid; the first one keeps serving.
    @Test func secondCoordinatorRefusesTheJournal() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        let (status, _, err) = try runStagebeam(
            ["coordinator", "--bind", "tcp://127.0.0.1:*", "--journal", cluster.journal], in: scratch, name: "second", timeout: 20)
        #expect(status != 0)
        #expect(err.contains("in use by another coordinator (pid \(cluster.coordinator.pid)"), "\(err)")
        #expect(cluster.coordinator.process.isRunning)
    }

    /// Retention drops jobs that finished longer ago than the limit (and the step lines of finished
    /// jobs), keeps unfinished jobs whatever their age, and keeps everything newer than the limit.
    @Test func retentionKeepsUnfinishedAndRecentJobs() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("journal.jsonl")
        var result = Stagebeam_V1_JobResult()
        result.status = .succeeded
        result.answer = "eight"
        do {
            let (journal, _) = try Journal.open(url) { _ in }
            try journal.accepted("old-finished", submit: submit("old-finished")) { _ in }
            try journal.step("old-finished", key: "k", value: Data("[1]".utf8))
            try journal.finished("old-finished", result: result) { _ in }
            try journal.accepted("old-unfinished", submit: submit("old-unfinished")) { _ in }
            try journal.step("old-unfinished", key: "k", value: Data("[2]".utf8))
        }
        let retain = Duration.seconds(3600)
        // Half an hour on, nothing is old enough to go; only the finished job's step line goes.
        do {
            let (_, entries) = try Journal.open(url, retain: retain, now: Date().addingTimeInterval(1800)) { _ in }
            #expect(entries.map(\.id) == ["old-finished", "old-unfinished"])
            let text = try String(contentsOf: url, encoding: .utf8)
            #expect(text.split(separator: "\n").count == 4)
        }
        var logged: [String] = []
        do {
            let (_, entries) = try Journal.open(url, retain: retain, now: Date().addingTimeInterval(7200)) { logged.append($0) }
            #expect(entries.map(\.id) == ["old-unfinished"])
            #expect(entries[0].entry.steps == ["k": Data("[2]".utf8)])
            #expect(logged.contains { $0.contains("dropped 1 jobs") })
        }
        let (_, entries) = try Journal.open(url) { _ in }
        #expect(entries.map(\.id) == ["old-unfinished"])
        let mode = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func retentionPeriods() {
        #expect(RetentionPeriod.parse("7d") == .seconds(7 * 86_400))
        #expect(RetentionPeriod.parse("1d12h") == .seconds(36 * 3600))
        #expect(RetentionPeriod.parse("90s") == .seconds(90))
        for bad in ["", "7", "d", "7w", "-1d", "0h", "1.5h"] { #expect(RetentionPeriod.parse(bad) == nil, "\(bad)") }
    }

    /// Records appended faster than the disk syncs share fsyncs (group commit), each caller hears
    /// once its record is durable, and all of them replay.
    @Test func appendsShareFsyncs() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("journal.jsonl")
        final class Countdown: Sendable {
            let remaining = Mutex(200)
        }
        let durable = Awaited<Void>()
        let countdown = Countdown()
        do {
            let (journal, _) = try Journal.open(url) { _ in }
            for index in 0..<200 {
                try journal.accepted("job-\(index)", submit: submit("job-\(index)")) { error in
                    #expect(error == nil)
                    if countdown.remaining.withLock({
                        $0 -= 1; return $0
                    }) == 0 {
                        durable.fulfill(())
                    }
                }
            }
            durable.wait()
            let writes = journal.writes
            #expect(writes.records == 200)
            #expect(writes.syncs < 100, "\(writes.syncs) fsyncs for 200 records")
        }
        let (_, entries) = try Journal.open(url) { _ in }
        #expect(entries.count == 200)
    }
}
