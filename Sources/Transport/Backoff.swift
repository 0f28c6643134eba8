/// Exponential backoff between reconnection attempts: initial, 2×, 4×, … capped at `maximum`,
/// back to `initial` after a success.
public struct Backoff: Sendable, Equatable {
    public let initial: Duration
    public let maximum: Duration
    /// Attempts since the last success.
    public private(set) var attempts = 0

    public init(initial: Duration, maximum: Duration) {
        precondition(initial > .zero && maximum >= initial, "need 0 < initial ≤ maximum")
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next attempt.
    public mutating func next() -> Duration {
        var delay = initial
        // Doubling stops at the cap, so large attempt counts cannot overflow.
        for _ in 0..<attempts where delay < maximum { delay = delay * 2 }
        attempts += 1
        return min(delay, maximum)
    }

    public mutating func reset() {
        attempts = 0
    }
}
