import Foundation
import Synchronization

/// One ZeroMQ socket served by its own thread.
///
/// A libzmq socket is not thread-safe, and a blocking receive would starve Swift's cooperative
/// thread pool, so each socket gets one owning thread running a `zmq_poll` loop. The loop hands
/// received messages to `onMessage`, drains the queue that `send` fills from any thread, runs
/// `onTick` periodically, and closes and recreates the socket on `reconnect(after:)`.
///
/// Handlers run on the owning thread, one at a time, so they may keep unsynchronised state
/// between calls; they must be short (hand heavy work to other threads) because the loop serves
/// nothing else while one runs. Call `close()` when done: the thread runs until then.
// @unchecked: owns a libzmq socket, which only the owning thread touches (`socket` below); what
// other threads share is in `shared`, behind a Mutex.
public final class SocketLoop: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var kind: ZMQSocket.Kind
        /// Endpoints to bind, e.g. `tcp://127.0.0.1:*` (a free port: see `boundEndpoints`).
        public var bind: [String]
        public var connect: [String]
        /// This socket's identity as a ROUTER peer sees it (DEALERs).
        public var routingID: [UInt8]?
        /// How long closing keeps unsent messages (nil = until sent).
        public var linger: Duration?
        /// Largest inbound frame; libzmq disconnects a peer that sends a bigger one.
        public var maxMessageBytes: Int64?
        /// Messages libzmq queues per peer and direction (nil = libzmq's 1000, 0 = no limit). A
        /// ROUTER drops and reports (`onSendFailure`, `.peerBusy`) a message to a full peer.
        public var highWaterMark: Int32?
        /// Messages libzmq holds per peer for this socket to read (overrides `highWaterMark` for that
        /// direction). With `maxMessageBytes` it bounds what one peer can make this process hold.
        public var receiveHighWaterMark: Int32?
        /// How often `onTick` runs (nil = never).
        public var tick: Duration?
        /// The owning thread's name, for debuggers and logs.
        public var name: String
        /// CURVE encryption and authentication (nil: plain TCP).
        public var curve: CurveRole?

        public init(
            kind: ZMQSocket.Kind, bind: [String] = [], connect: [String] = [], routingID: [UInt8]? = nil,
            linger: Duration? = .zero, maxMessageBytes: Int64? = nil, highWaterMark: Int32? = nil,
            receiveHighWaterMark: Int32? = nil, tick: Duration? = nil, name: String? = nil, curve: CurveRole? = nil
        ) {
            self.receiveHighWaterMark = receiveHighWaterMark
            self.curve = curve
            self.kind = kind
            self.bind = bind
            self.connect = connect
            self.routingID = routingID
            self.linger = linger
            self.maxMessageBytes = maxMessageBytes
            self.highWaterMark = highWaterMark
            self.tick = tick
            self.name = name ?? "zmq-\(kind)"
        }
    }

    public struct Handlers: Sendable {
        /// A received message (for a ROUTER, frame 0 is the sender's routing id).
        public var onMessage: @Sendable ([[UInt8]]) -> Void
        /// Runs every `Configuration.tick` with the loop and the current time.
        public var onTick: @Sendable (SocketLoop, ContinuousClock.Instant) -> Void
        /// The message sent first on every new socket (at start and after each reconnect), ahead of
        /// anything queued: e.g. a worker's READY.
        public var greeting: @Sendable () -> [[UInt8]]?
        /// A queued message that could not be sent and was dropped: a ROUTER's unknown or full peer.
        public var onSendFailure: @Sendable ([[UInt8]], TransportError) -> Void
        /// A failure of the loop itself; after `willStop` errors the loop has stopped.
        public var onError: @Sendable (_ error: TransportError, _ willStop: Bool) -> Void
        /// A peer whose security handshake failed (e.g. a client without CURVE keys at a CURVE
        /// server): libzmq drops such a connection without a message to the socket, so the loop
        /// watches for them (`HandshakeMonitor`) only when this is set.
        public var onHandshakeFailure: (@Sendable (HandshakeFailure) -> Void)?

        public init(
            onMessage: @escaping @Sendable ([[UInt8]]) -> Void,
            onTick: @escaping @Sendable (SocketLoop, ContinuousClock.Instant) -> Void = { _, _ in },
            greeting: @escaping @Sendable () -> [[UInt8]]? = { nil },
            onSendFailure: @escaping @Sendable ([[UInt8]], TransportError) -> Void = { _, _ in },
            onError: @escaping @Sendable (TransportError, Bool) -> Void = { _, _ in },
            onHandshakeFailure: (@Sendable (HandshakeFailure) -> Void)? = nil
        ) {
            self.onMessage = onMessage
            self.onTick = onTick
            self.greeting = greeting
            self.onSendFailure = onSendFailure
            self.onError = onError
            self.onHandshakeFailure = onHandshakeFailure
        }
    }

    public let configuration: Configuration
    /// The endpoints actually bound, in `configuration.bind` order (wildcard ports resolved).
    public let boundEndpoints: [String]

    private let context: ZMQContext
    private let handlers: Handlers
    private let wake: WakePipe
    private let stopped = DispatchGroup()

    /// What other threads share with the owning thread.
    private struct Shared {
        var outgoing = FrameQueue()
        /// Sent before anything in `outgoing` (heartbeats must not wait behind a burst of job traffic).
        var urgent = FrameQueue()
        var closing = false
        var reconnectDelay: Duration?
        var ownerThread: pthread_t?
    }
    private let shared = Mutex(Shared())

    // Touched only by the owning thread (and by `init` before the thread starts).
    private var socket: ZMQSocket?
    /// Watches `socket`'s handshakes when `handlers.onHandshakeFailure` is set.
    private var monitor: HandshakeMonitor?

    /// Creates the socket, binds and connects it (so address errors throw here), then starts the
    /// owning thread.
    public init(context: ZMQContext, configuration: Configuration, handlers: Handlers) throws(TransportError) {
        self.context = context
        self.configuration = configuration
        self.handlers = handlers
        self.wake = try WakePipe()
        let (socket, monitor, bound) = try Self.makeSocket(
            context, configuration, bindTo: configuration.bind, monitored: handlers.onHandshakeFailure != nil)
        self.socket = socket
        self.monitor = monitor
        self.boundEndpoints = bound
        if let hello = handlers.greeting() { shared.withLock { $0.urgent.append(hello) } }
        stopped.enter()
        // Starting the thread is the memory barrier libzmq requires to move a socket across threads.
        let thread = Thread { [self] in run() }
        thread.name = configuration.name
        thread.start()
    }

    /// Queues a message for the owning thread to send. Thread-safe; never blocks on the network.
    /// A DEALER keeps messages queued while it has no live connection. `urgent` messages go out
    /// before every message queued without it.
    public func send(_ frames: [[UInt8]], urgent isUrgent: Bool = false) throws(TransportError) {
        guard !frames.isEmpty else { throw TransportError(.invalidArgument, "cannot send a message with no frames") }
        let wasEmpty: Bool? = shared.withLock { shared in
            guard !shared.closing else { return nil }
            if isUrgent { shared.urgent.append(frames) } else { shared.outgoing.append(frames) }
            return shared.outgoing.count + shared.urgent.count == 1
        }
        guard let wasEmpty else { throw TransportError(.closed, "\(configuration.name) is closed") }
        // Only the first message of a burst needs to wake the loop: it drains everything queued.
        if wasEmpty { wake.signal() }
    }

    /// Messages queued and not yet handed to libzmq.
    public var queuedCount: Int { shared.withLock { $0.outgoing.count + $0.urgent.count } }

    /// Closes the socket and, after `delay`, opens a fresh one with the same configuration (the
    /// same endpoints; bound ports are kept) and sends the greeting first. Queued messages stay
    /// queued; messages already inside libzmq for the old socket are dropped. Thread-safe.
    public func reconnect(after delay: Duration) {
        shared.withLock { $0.reconnectDelay = delay }
        wake.signal()
    }

    /// Stops the loop and closes the socket; waits for the owning thread to finish unless called
    /// from it (e.g. from a handler). Idempotent.
    public func close() {
        let onOwner: Bool = shared.withLock { shared in
            shared.closing = true
            return shared.ownerThread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
        }
        wake.signal()
        if !onOwner { stopped.wait() }
    }

    // MARK: The owning thread

    private func run() {
        shared.withLock { $0.ownerThread = pthread_self() }
        defer {
            closeSocket()
            shared.withLock { $0.closing = true }
            stopped.leave()
        }
        var nextTick = configuration.tick.map { ContinuousClock.now + $0 }
        var reopenAt: ContinuousClock.Instant?
        var blocked = false
        while true {
            let (stop, delay): (Bool, Duration?) = shared.withLock { shared in
                defer { shared.reconnectDelay = nil }
                return (shared.closing, shared.reconnectDelay)
            }
            if stop { return }
            if let delay {
                closeSocket()
                reopenAt = .now + delay
            }
            if socket == nil, let at = reopenAt, at <= .now {
                reopenAt = nil
                do {
                    (socket, monitor, _) = try Self.makeSocket(
                        context, configuration, bindTo: boundEndpoints, monitored: handlers.onHandshakeFailure != nil)
                    if let hello = handlers.greeting() { shared.withLock { $0.urgent.prepend(hello) } }
                } catch {
                    // E.g. a ROUTER's port still held by the old socket's teardown: try again.
                    handlers.onError(error, false)
                    reopenAt = .now + Self.reopenRetry
                }
            }
            if let socket { blocked = flush(socket) }

            var items: [(ZMQPoll.Target, ZMQPoll.Events)] = [(.fileDescriptor(wake.readEnd), .readable)]
            if let socket { items.append((.socket(socket), blocked ? [.readable, .writable] : .readable)) }
            if let monitor { items.append((.socket(monitor.receiver), .readable)) }
            let wakeAt = [nextTick, reopenAt].compactMap { $0 }.min()
            let ready: [ZMQPoll.Events]
            do {
                ready = try ZMQPoll.wait(items, timeout: wakeAt.map { $0 - .now })
            } catch {
                handlers.onError(error, true)
                return
            }
            if ready[0].contains(.readable) { wake.drain() }
            if let socket, ready.count > 1, ready[1].contains(.readable) {
                do {
                    try receiveWaiting(socket)
                } catch {
                    handlers.onError(error, true)
                    return
                }
            }
            if let monitor, ready.count > 2, ready[2].contains(.readable) {
                for failure in monitor.drain() { handlers.onHandshakeFailure?(failure) }
            }
            if let tick = configuration.tick, let due = nextTick, due <= .now {
                let now = ContinuousClock.now
                handlers.onTick(self, now)
                nextTick = now + tick
            }
        }
    }

    /// Closes the socket and its monitor (the monitor first: it watches the socket).
    private func closeSocket() {
        monitor?.close()
        monitor = nil
        socket?.close()
        socket = nil
    }

    /// Hands queued messages to libzmq until the queue is empty or the socket would block.
    /// Returns true when it would block (a DEALER without a live connection or with a full queue).
    private func flush(_ socket: ZMQSocket) -> Bool {
        while let (frames, isUrgent) = shared.withLock({ $0.urgent.first.map { ($0, true) } ?? $0.outgoing.first.map { ($0, false) } }) {
            let failure: TransportError?
            do {
                // A DEALER waits for its peer; a ROUTER must not let one full peer hold up all others.
                let sent = try socket.send(frames, dontWait: true)
                if !sent && socket.kind == .dealer { return true }
                failure = sent ? nil : TransportError(.peerBusy, "peer's queue is full")
            } catch {
                failure = error
            }
            shared.withLock { isUrgent ? $0.urgent.removeFirst() : $0.outgoing.removeFirst() }
            if let failure { handlers.onSendFailure(frames, failure) }
        }
        return false
    }

    /// Delivers the messages waiting on the socket, a bounded batch so sends and ticks keep going.
    private func receiveWaiting(_ socket: ZMQSocket) throws(TransportError) {
        for _ in 0..<256 {
            guard let frames = try socket.receive(dontWait: true) else { return }
            handlers.onMessage(frames)
        }
    }

    /// How long to wait before trying again when opening a replacement socket failed.
    private static let reopenRetry = Duration.milliseconds(250)

    private static func makeSocket(
        _ context: ZMQContext, _ configuration: Configuration, bindTo endpoints: [String], monitored: Bool
    ) throws(TransportError) -> (socket: ZMQSocket, monitor: HandshakeMonitor?, bound: [String]) {
        let socket = try ZMQSocket(context: context, kind: configuration.kind, linger: configuration.linger)
        switch configuration.kind {
        case .router: try socket.setRouterMandatory(true)
        case .dealer: try socket.setImmediate(true)
        case .reply, .pair: break
        }
        // Before binding and connecting, so that no connection goes unwatched.
        let monitor = monitored ? try HandshakeMonitor(context: context, watching: socket) : nil
        if let curve = configuration.curve { try socket.setCurve(curve) }
        if let id = configuration.routingID { try socket.setRoutingID(id) }
        if let limit = configuration.maxMessageBytes { try socket.setMaxMessageSize(limit) }
        if let hwm = configuration.highWaterMark { try socket.setHighWaterMarks(send: hwm, receive: hwm) }
        if let hwm = configuration.receiveHighWaterMark { try socket.setReceiveHighWaterMark(hwm) }
        var bound: [String] = []
        for endpoint in endpoints { bound.append(try socket.bind(endpoint)) }
        for endpoint in configuration.connect { try socket.connect(endpoint) }
        return (socket, monitor, bound)
    }
}
