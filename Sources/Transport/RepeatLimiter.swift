/// At most one log line per key (a peer) per interval: the first occurrence is logged at once, the
/// ones after it in the same interval are only counted, and the count goes out with the key's next
/// line or, when the key falls silent, from `expired`. A peer that sends thousands of bad frames
/// costs a few lines, not thousands.
///
/// Not thread-safe: its owner keeps it behind its own lock (or on one thread).
public struct RepeatLimiter<Key: Hashable> {
    public let interval: Duration
    /// Keys seen in their current interval: when it started and how many lines were held back since.
    private var windows: [Key: (start: ContinuousClock.Instant, held: Int)] = [:]

    public init(interval: Duration) {
        self.interval = interval
    }

    /// Whether to log an occurrence of `key` now; when so, `held` is how many occurrences were not
    /// logged since its previous line.
    public mutating func admit(_ key: Key, now: ContinuousClock.Instant) -> (log: Bool, held: Int) {
        if let window = windows[key], now - window.start < interval {
            windows[key]?.held += 1
            return (false, 0)
        }
        let held = windows[key]?.held ?? 0
        windows[key] = (now, 0)
        return (true, held)
    }

    /// The keys whose interval has ended with occurrences held back, and their counts; forgets every
    /// ended interval (so the table holds only peers heard from in the last interval).
    public mutating func expired(now: ContinuousClock.Instant) -> [(key: Key, held: Int)] {
        var report: [(key: Key, held: Int)] = []
        for (key, window) in windows where now - window.start >= interval {
            if window.held > 0 { report.append((key, window.held)) }
            windows[key] = nil
        }
        return report
    }
}
