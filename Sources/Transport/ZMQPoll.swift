import CZeroMQ

/// Waiting on several sockets and file descriptors at once (`zmq_poll`).
public enum ZMQPoll {
    public enum Target {
        case socket(ZMQSocket)
        case fileDescriptor(Int32)
    }

    public struct Events: OptionSet, Sendable {
        public let rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: Int16(ZMQ_POLLIN))
        public static let writable = Events(rawValue: Int16(ZMQ_POLLOUT))
    }

    /// Waits until some item is ready or `timeout` passes (nil = no limit) and returns, per item in
    /// order, the requested events that are ready (all empty on timeout or an interrupting signal).
    public static func wait(_ items: [(Target, Events)], timeout: Duration?) throws(TransportError) -> [Events] {
        var raw = [zmq_pollitem_t]()
        raw.reserveCapacity(items.count)
        for (target, events) in items {
            switch target {
            case .socket(let socket):
                raw.append(zmq_pollitem_t(socket: try socket.open(), fd: -1, events: events.rawValue, revents: 0))
            case .fileDescriptor(let fd):
                raw.append(zmq_pollitem_t(socket: nil, fd: fd, events: events.rawValue, revents: 0))
            }
        }
        let rc = zmq_poll(&raw, Int32(raw.count), timeout.map { Int(milliseconds(max($0, .zero))) } ?? -1)
        if rc < 0 {
            let errno = zmq_errno()
            if errno == EINTR { return Array(repeating: [], count: items.count) }
            throw TransportError.fromErrno(errno, "zmq_poll")
        }
        return raw.map { Events(rawValue: $0.revents) }
    }
}
