import ClusterTestSupport
import Foundation
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
            try journal.accepted("one", submit: submit("one"))
            try journal.accepted("two", submit: submit("two"))
            var result = Stagebeam_V1_JobResult()
            result.jobID = "one"
            result.status = .succeeded
            result.answer = "forty-two"
            try journal.finished("one", result: result)
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
            try journal.accepted("one", submit: submit("one"))
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
            try journal.accepted("two", submit: submit("two"))
        }
        // The torn line is now in the middle: the journal refuses to guess.
        #expect(throws: ClusterError.self) { try Journal.open(url) { _ in } }
    }
}
