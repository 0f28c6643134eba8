import Foundation

/// SIGINT and SIGTERM, caught from the moment this is made: a process makes it before it announces
/// itself, so a signal sent as soon as the announcement appears is handled, not the default kill.
final class TerminationSignals: @unchecked Sendable { // `sources` are only kept alive, never used after init
    private let signals: AsyncStream<Int32>
    private let sources: [DispatchSourceSignal]

    init() {
        let (signals, continuation) = AsyncStream.makeStream(of: Int32.self)
        self.signals = signals
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    /// The first signal caught (at once if one came already).
    func first() async -> Int32 {
        for await number in signals { return number }
        return SIGTERM
    }
}
