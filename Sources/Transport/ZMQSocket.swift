import CZeroMQ

/// One libzmq socket. Not thread-safe: use it from one thread at a time (a `SocketLoop` gives it
/// one owning thread); handing it to another thread needs a memory barrier (e.g. `Thread.start`).
///
/// Messages are multipart: an array of frames, each an array of bytes.
public final class ZMQSocket {
    public enum Kind: Sendable, CustomStringConvertible {
        /// Routes by peer: each received message starts with the sender's routing id, and each
        /// sent message must start with the receiver's.
        case router
        /// Talks to its connected peer(s) with no routing frame.
        case dealer
        /// Answers one request at a time (the ZAP authentication handler).
        case reply
        /// Talks to exactly one peer (a socket monitor's events).
        case pair

        var raw: Int32 {
            switch self {
            case .router: ZMQ_ROUTER
            case .dealer: ZMQ_DEALER
            case .reply: ZMQ_REP
            case .pair: ZMQ_PAIR
            }
        }

        public var description: String {
            switch self {
            case .router: "ROUTER"
            case .dealer: "DEALER"
            case .reply: "REP"
            case .pair: "PAIR"
            }
        }
    }

    public let kind: Kind
    private var handle: UnsafeMutableRawPointer?
    /// Keeps the context alive while the socket is open.
    private let context: ZMQContext
    /// The message every receive fills. A `zmq_msg_t` must never be copied (libzmq keeps
    /// pointers into it), so it lives at a fixed heap address for the socket's whole life.
    private let incoming: UnsafeMutablePointer<zmq_msg_t>

    /// - Parameter linger: how long `close` keeps unsent messages (nil = forever). Zero by default,
    ///   so that closing never hangs on an unreachable peer.
    public init(context: ZMQContext, kind: Kind, linger: Duration? = .zero) throws(TransportError) {
        guard let handle = zmq_socket(context.handle, kind.raw) else {
            throw TransportError.lastZMQ("zmq_socket(\(kind))")
        }
        self.kind = kind
        self.handle = handle
        self.context = context
        self.incoming = .allocate(capacity: 1)
        try setLinger(linger)
    }

    deinit {
        close()
        incoming.deallocate()
    }

    // MARK: Endpoints

    /// Binds and returns the endpoint actually bound: `tcp://127.0.0.1:*` picks a free port and
    /// returns e.g. `tcp://127.0.0.1:40123`.
    @discardableResult
    public func bind(_ endpoint: String) throws(TransportError) -> String {
        let h = try open()
        guard zmq_bind(h, endpoint) == 0 else { throw TransportError.lastZMQ("bind \(endpoint)") }
        return try lastEndpoint()
    }

    public func unbind(_ endpoint: String) throws(TransportError) {
        let h = try open()
        guard zmq_unbind(h, endpoint) == 0 else { throw TransportError.lastZMQ("unbind \(endpoint)") }
    }

    /// Connects (asynchronously: libzmq keeps retrying in the background until the peer is there).
    public func connect(_ endpoint: String) throws(TransportError) {
        let h = try open()
        guard zmq_connect(h, endpoint) == 0 else { throw TransportError.lastZMQ("connect \(endpoint)") }
    }

    /// The endpoint of the last bind or connect (ZMQ_LAST_ENDPOINT).
    public func lastEndpoint() throws(TransportError) -> String {
        let h = try open()
        var buffer = [CChar](repeating: 0, count: 512)
        var size = buffer.count
        guard zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
            throw TransportError.lastZMQ("getsockopt ZMQ_LAST_ENDPOINT")
        }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Options

    public func setLinger(_ linger: Duration?) throws(TransportError) {
        try setOption(ZMQ_LINGER, "ZMQ_LINGER", Int32(linger.map(milliseconds) ?? -1))
    }

    /// The identity a ROUTER peer sees for this socket: 1…255 bytes, not starting with a zero byte
    /// (libzmq reserves those). Set before connecting.
    public func setRoutingID(_ id: [UInt8]) throws(TransportError) {
        guard (1...255).contains(id.count), id[0] != 0 else {
            throw TransportError(.invalidArgument, "routing id must be 1…255 bytes not starting with 0x00, got \(id.count) bytes")
        }
        let h = try open()
        let rc = id.withUnsafeBytes { zmq_setsockopt(h, ZMQ_ROUTING_ID, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw TransportError.lastZMQ("setsockopt ZMQ_ROUTING_ID") }
    }

    /// ROUTER only: a message to an unknown routing id fails with `.unreachablePeer` instead of
    /// being dropped silently, and a full peer queue makes the send return `false` instead of
    /// dropping.
    public func setRouterMandatory(_ on: Bool) throws(TransportError) {
        try setOption(ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY", on ? 1 : 0)
    }

    /// Queue messages only to completed connections, so a DEALER with no live peer reports "would
    /// block" instead of queueing into a connection that may never come up.
    public func setImmediate(_ on: Bool) throws(TransportError) {
        try setOption(ZMQ_IMMEDIATE, "ZMQ_IMMEDIATE", on ? 1 : 0)
    }

    /// High-water marks: messages queued per peer before sends block or drop.
    public func setHighWaterMarks(send: Int32, receive: Int32) throws(TransportError) {
        try setOption(ZMQ_SNDHWM, "ZMQ_SNDHWM", send)
        try setOption(ZMQ_RCVHWM, "ZMQ_RCVHWM", receive)
    }

    /// Messages libzmq holds per peer for this side to read; past it, libzmq stops reading that
    /// peer's connection and TCP pushes back on the sender.
    public func setReceiveHighWaterMark(_ messages: Int32) throws(TransportError) {
        try setOption(ZMQ_RCVHWM, "ZMQ_RCVHWM", messages)
    }

    /// Largest inbound frame; a peer sending a bigger one is disconnected by libzmq.
    public func setMaxMessageSize(_ bytes: Int64) throws(TransportError) {
        let h = try open()
        var value = bytes
        guard zmq_setsockopt(h, ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size) == 0 else {
            throw TransportError.lastZMQ("setsockopt ZMQ_MAXMSGSIZE \(bytes)")
        }
    }

    /// Sets up CURVE encryption and authentication (see `Curve`); before bind or connect.
    public func setCurve(_ role: CurveRole) throws(TransportError) {
        switch role {
        case .server(let secretKey):
            try setOption(ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER", 1)
            try setKey(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", secretKey)
            // A ZAP domain makes libzmq ask the authenticator (`ZAPAuthenticator`) about every client.
            try setString(ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN", Curve.zapDomain)
        case .client(let serverKey, let keys):
            try setKey(ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY", serverKey)
            try setKey(ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY", keys.publicKey)
            try setKey(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", keys.secretKey)
        }
    }

    private func setKey(_ option: Int32, _ name: String, _ z85: String) throws(TransportError) {
        guard Curve.isKey(z85) else { throw TransportError(.invalidArgument, "\(name): a CURVE key is 40 Z85 characters") }
        try setString(option, name, z85)
    }

    private func setString(_ option: Int32, _ name: String, _ value: String) throws(TransportError) {
        let h = try open()
        let bytes = Array(value.utf8)
        guard bytes.withUnsafeBytes({ zmq_setsockopt(h, option, $0.baseAddress, $0.count) }) == 0 else {
            throw TransportError.lastZMQ("setsockopt \(name)")
        }
    }

    private func setOption(_ option: Int32, _ name: String, _ value: Int32) throws(TransportError) {
        let h = try open()
        var value = value
        guard zmq_setsockopt(h, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw TransportError.lastZMQ("setsockopt \(name) \(value)")
        }
    }

    // MARK: Messages

    /// Sends one multipart message. With `dontWait`, returns false (nothing sent) when the message
    /// cannot be queued now; otherwise blocks until it can.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws(TransportError) -> Bool {
        guard !frames.isEmpty else { throw TransportError(.invalidArgument, "cannot send a message with no frames") }
        let h = try open()
        for (index, frame) in frames.enumerated() {
            // Only the first frame may be refused: once it is queued, libzmq accepts the rest of a
            // multipart message atomically.
            var flags: Int32 = index == 0 && dontWait ? ZMQ_DONTWAIT : 0
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            while true {
                let rc = frame.withUnsafeBytes { zmq_send(h, $0.baseAddress, $0.count, flags) }
                if rc >= 0 { break }
                let errno = zmq_errno()
                if errno == EINTR { continue }
                if errno == EAGAIN && index == 0 { return false }
                throw TransportError.fromErrno(errno, "send on \(kind)")
            }
        }
        return true
    }

    /// Receives one multipart message. With `dontWait`, returns nil when none is waiting;
    /// otherwise blocks until one arrives.
    public func receive(dontWait: Bool = false) throws(TransportError) -> [[UInt8]]? {
        let h = try open()
        var frames: [[UInt8]] = []
        while true {
            zmq_msg_init(incoming)
            // Later parts of a multipart message have already arrived with the first.
            let flags: Int32 = frames.isEmpty && dontWait ? ZMQ_DONTWAIT : 0
            if zmq_msg_recv(incoming, h, flags) < 0 {
                let errno = zmq_errno()
                zmq_msg_close(incoming)
                if errno == EINTR { continue }
                if errno == EAGAIN && frames.isEmpty { return nil }
                throw TransportError.fromErrno(errno, "receive on \(kind)")
            }
            frames.append([UInt8](UnsafeRawBufferPointer(start: zmq_msg_data(incoming), count: zmq_msg_size(incoming))))
            let more = zmq_msg_more(incoming) != 0
            zmq_msg_close(incoming)
            if !more { return frames }
        }
    }

    /// Receives one multipart message, or returns nil when none arrives within `timeout`.
    public func receive(timeout: Duration) throws(TransportError) -> [[UInt8]]? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let frames = try receive(dontWait: true) { return frames }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return nil }
            _ = try ZMQPoll.wait([(.socket(self), .readable)], timeout: left)
        }
    }

    /// Closes the socket (idempotent). Unsent messages are kept for the linger time.
    public func close() {
        if let h = handle {
            zmq_close(h)
            handle = nil
        }
    }

    public var isOpen: Bool { handle != nil }

    /// The raw handle, for polling.
    func open() throws(TransportError) -> UnsafeMutableRawPointer {
        guard let h = handle else { throw TransportError(.closed, "\(kind) socket is closed") }
        return h
    }
}

/// Whole milliseconds in `duration`, rounded up so that a short wait never becomes a busy poll.
func milliseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
    let rest = attoseconds % 1_000_000_000_000_000
    return Int(rest > 0 ? ms + 1 : ms)
}
