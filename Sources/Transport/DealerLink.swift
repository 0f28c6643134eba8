import Foundation
import Synchronization

/// A DEALER connection that keeps itself alive, for workers and clients (the ZeroMQ guide's
/// "Paranoid Pirate" worker): it sends a greeting (e.g. READY) first on every connection, sends a
/// heartbeat every interval from its own thread (so a worker busy decoding still beats), declares
/// the peer dead after `missedLimit` intervals without hearing anything, and then replaces its
/// socket after an exponentially growing delay. Hearing anything resets the backoff.
///
/// Replacing the socket, not only relying on libzmq's TCP reconnect, matters: a restarted
/// coordinator does not know the worker, and the new socket starts with a greeting that tells it.
public final class DealerLink: Sendable {
    public enum State: Sendable, Equatable {
        /// Started, nothing heard yet.
        case connecting
        /// Heard from the peer within the heartbeat deadline.
        case connected
        /// The peer went silent; a new socket opens after `delay` (attempt counts from 1).
        case reconnecting(attempt: Int, delay: Duration)
    }

    public struct Configuration: Sendable {
        public var endpoint: String
        /// This peer's identity at the ROUTER; keep it stable across reconnects.
        public var routingID: [UInt8]
        public var heartbeat: HeartbeatPolicy
        public var backoff: Backoff
        public var maxMessageBytes: Int64?
        public var name: String
        /// CURVE client keys (nil: plain TCP).
        public var curve: CurveRole?

        public init(
            endpoint: String, routingID: [UInt8], heartbeat: HeartbeatPolicy, backoff: Backoff,
            maxMessageBytes: Int64? = nil, name: String = "zmq-dealer-link", curve: CurveRole? = nil
        ) {
            self.curve = curve
            self.endpoint = endpoint
            self.routingID = routingID
            self.heartbeat = heartbeat
            self.backoff = backoff
            self.maxMessageBytes = maxMessageBytes
            self.name = name
        }
    }

    private let loop: SocketLoop
    private let watchdog: Watchdog

    /// - Parameters:
    ///   - greeting: the first message on every new socket.
    ///   - heartbeat: the message sent every interval when nothing else is waiting to go out.
    ///   - onMessage: every message received, heartbeats included; runs on the link's thread.
    ///   - onStateChange: runs on the link's thread.
    public init(
        context: ZMQContext, configuration: Configuration,
        greeting: @escaping @Sendable () -> [[UInt8]],
        heartbeat: @escaping @Sendable () -> [[UInt8]],
        onMessage: @escaping @Sendable ([[UInt8]]) -> Void,
        onStateChange: @escaping @Sendable (State) -> Void = { _ in }
    ) throws(TransportError) {
        let watchdog = Watchdog(configuration: configuration, start: .now)
        self.watchdog = watchdog
        let policy = configuration.heartbeat
        // Ticking four times per interval bounds how late a beat or a death is noticed.
        let loopConfiguration = SocketLoop.Configuration(
            kind: .dealer, connect: [configuration.endpoint], routingID: configuration.routingID,
            maxMessageBytes: configuration.maxMessageBytes, tick: policy.interval / 4, name: configuration.name,
            curve: configuration.curve)
        let handlers = SocketLoop.Handlers(
            onMessage: { frames in
                if let state = watchdog.heard(at: .now) { onStateChange(state) }
                onMessage(frames)
            },
            onTick: { loop, now in
                switch watchdog.tick(at: now, nothingQueued: loop.queuedCount == 0) {
                case .none: break
                case .beat: try? loop.send(heartbeat()) // fails only once closing
                case .reconnect(let state, let delay):
                    loop.reconnect(after: delay)
                    onStateChange(state)
                }
            },
            greeting: greeting)
        loop = try SocketLoop(context: context, configuration: loopConfiguration, handlers: handlers)
    }

    /// Queues a message to the peer. Thread-safe; kept queued while the link is down.
    public func send(_ frames: [[UInt8]]) throws(TransportError) {
        try loop.send(frames)
    }

    public var state: State { watchdog.state }

    public func close() {
        loop.close()
    }
}

/// The link's liveness bookkeeping, shared by the loop's handlers.
private final class Watchdog: Sendable {
    enum Action {
        case none
        case beat
        case reconnect(DealerLink.State, Duration)
    }

    private struct Bookkeeping {
        var backoff: Backoff
        var schedule: HeartbeatSchedule
        var lastHeard: ContinuousClock.Instant
        var current = DealerLink.State.connecting
    }

    private let policy: HeartbeatPolicy
    private let bookkeeping: Mutex<Bookkeeping>

    init(configuration: DealerLink.Configuration, start: ContinuousClock.Instant) {
        policy = configuration.heartbeat
        bookkeeping = Mutex(
            Bookkeeping(
                backoff: configuration.backoff, schedule: HeartbeatSchedule(interval: policy.interval, start: start), lastHeard: start))
    }

    var state: DealerLink.State { bookkeeping.withLock { $0.current } }

    /// Records a sign of life; returns the new state when it changed.
    func heard(at now: ContinuousClock.Instant) -> DealerLink.State? {
        bookkeeping.withLock { book in
            book.lastHeard = now
            guard book.current != .connected else { return nil }
            book.current = .connected
            book.backoff.reset()
            return book.current
        }
    }

    func tick(at now: ContinuousClock.Instant, nothingQueued: Bool) -> Action {
        bookkeeping.withLock { book in
            if policy.isExpired(lastHeard: book.lastHeard, now: now) {
                let delay = book.backoff.next()
                book.current = .reconnecting(attempt: book.backoff.attempts, delay: delay)
                // The new socket gets a full deadline, counted from when it opens.
                book.lastHeard = now + delay
                book.schedule = HeartbeatSchedule(interval: policy.interval, start: now + delay)
                return .reconnect(book.current, delay)
            }
            // Anything queued already tells the peer we are alive once it goes out; piling
            // heartbeats behind it while disconnected would only flood the peer later.
            return book.schedule.isDue(at: now) && nothingQueued ? .beat : .none
        }
    }
}
