import Foundation
import Synchronization

/// Progress of a batch for a person: on a terminal a bar redrawn in place (done/total, rate, ETA,
/// failures); otherwise (a log file, CI) a plain line every `interval`.
public final class BatchProgress: Sendable {
    private let total: Int
    private let terminal: Bool
    private let interval: Duration
    private let write: @Sendable (String) -> Void
    private let start = ContinuousClock.now
    private struct Counts {
        var done: Int
        var doneNow = 0
        var failed = 0
        var lastShown: ContinuousClock.Instant
    }
    private let counts: Mutex<Counts>

    /// `alreadyDone`: items skipped because the output has them (they count as done, not in the rate).
    public init(
        total: Int, alreadyDone: Int, terminal: Bool, interval: Duration = .seconds(10),
        write: @escaping @Sendable (String) -> Void
    ) {
        self.total = total
        self.terminal = terminal
        self.interval = interval
        self.write = write
        counts = Mutex(Counts(done: alreadyDone, lastShown: start))
    }

    func finished(_ outcome: ItemOutcome) { finished(succeeded: outcome.succeeded) }

    func finished(succeeded: Bool) {
        let line: String? = counts.withLock { counts in
            counts.done += 1
            counts.doneNow += 1
            if !succeeded { counts.failed += 1 }
            let now = ContinuousClock.now
            guard now - counts.lastShown >= (terminal ? .milliseconds(100) : interval) else { return nil }
            counts.lastShown = now
            return render(counts, now: now)
        }
        if let line { show(line) }
    }

    public func end() {
        let line = counts.withLock { render($0, now: .now) }
        show(line)
        if terminal { write("\n") }
    }

    private func show(_ line: String) {
        // Terminal: return to the line's start and clear it, no newline.
        write(terminal ? "\r\u{1B}[2K" + line : line + "\n")
    }

    private func render(_ counts: Counts, now: ContinuousClock.Instant) -> String {
        let (done, doneNow, failed) = (counts.done, counts.doneNow, counts.failed)
        let elapsed = Double((now - start).components.seconds) + Double((now - start).components.attoseconds) * 1e-18
        let rate = elapsed > 0 ? Double(doneNow) / elapsed : 0
        let remaining = total - done
        let eta = rate > 0 ? Self.clock(Double(remaining) / rate) : "?"
        let counts = String(format: "%d/%d · %.2f items/s · ETA %@ · %d failed", done, total, rate, eta, failed)
        guard terminal else { return "progress " + counts }
        let width = 30
        let filled = total > 0 ? width * done / total : width
        return "[" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled) + "] " + counts
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
