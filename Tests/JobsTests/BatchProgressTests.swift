import Foundation
import Search
import Synchronization
import Testing
import Wire

@testable import Jobs

/// What a person sees: a bar redrawn in place on a terminal, plain lines otherwise.
struct BatchProgressTests {
    final class Sink: Sendable {
        private let written = Mutex("")
        var text: String { written.withLock { $0 } }
        func write(_ part: String) { written.withLock { $0 += part } }
    }

    static func outcome(_ id: String, succeeded: Bool) -> ItemOutcome {
        var result = Stagebeam_V1_JobResult()
        result.status = succeeded ? .succeeded : .failed
        return ItemOutcome(
            item: BatchItem(id: id, question: "q", line: 1), seed: 0, config: SearchConfig(), result: result, includeSearch: false)
    }

    @Test func terminalBarShowsDoneTotalRateETAAndFailures() {
        let sink = Sink()
        let progress = BatchProgress(total: 4, alreadyDone: 1, terminal: true, write: sink.write)
        progress.finished(Self.outcome("a", succeeded: false))
        progress.end()
        #expect(sink.text.hasPrefix("\r\u{1B}[2K["))
        #expect(sink.text.contains("] 2/4 · "))
        #expect(sink.text.contains(" items/s · ETA "))
        #expect(sink.text.contains("· 1 failed"))
        #expect(sink.text.hasSuffix("\n"))
        #expect(sink.text.contains(String(repeating: "█", count: 15) + String(repeating: "·", count: 15)))
    }

    @Test func plainLinesWithoutATerminal() {
        let sink = Sink()
        let progress = BatchProgress(total: 2, alreadyDone: 0, terminal: false, interval: .seconds(3600), write: sink.write)
        progress.finished(Self.outcome("a", succeeded: true))
        progress.finished(Self.outcome("b", succeeded: true))
        progress.end()
        // The interval has not passed: only the final line.
        #expect(sink.text.split(separator: "\n").count == 1)
        #expect(sink.text.hasPrefix("progress 2/2 · ") && sink.text.hasSuffix("· 0 failed\n") && !sink.text.contains("\r"))
    }

    @Test func etaClock() {
        #expect(BatchProgress.clock(59.6) == "1:00")
        #expect(BatchProgress.clock(3725) == "1:02:05")
    }
}
