import Testing
import Transport

@Suite struct RepeatLimiterTests {
    /// The first occurrence of a key is logged, the rest of its interval only counted; the count goes
    /// out with the key's next line or, once the key is quiet, from `expired`, which then forgets it.
    @Test func oneLinePerKeyPerIntervalWithACount() {
        var limiter = RepeatLimiter<String>(interval: .seconds(10))
        let start = ContinuousClock.now
        #expect(limiter.admit("a", now: start) == (true, 0))
        for second in 1...4 { #expect(limiter.admit("a", now: start + .seconds(second)) == (false, 0)) }
        #expect(limiter.admit("b", now: start + .seconds(5)) == (true, 0), "another peer has its own interval")
        #expect(limiter.expired(now: start + .seconds(9)).isEmpty)
        #expect(limiter.admit("a", now: start + .seconds(10)) == (true, 4), "the next line carries the count")
        #expect(limiter.admit("a", now: start + .seconds(11)) == (false, 0))

        let report = limiter.expired(now: start + .seconds(20))
        #expect(report.map(\.key) == ["a"] && report.map(\.held) == [1], "b had nothing held back")
        #expect(limiter.expired(now: start + .seconds(40)).isEmpty, "ended intervals are forgotten")
        #expect(limiter.admit("a", now: start + .seconds(41)) == (true, 0))
    }
}
