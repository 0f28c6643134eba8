import CZeroMQ

/// A transport failure: a code callers can switch on, a message naming the problem, and the
/// libzmq errno when libzmq reported it.
public struct TransportError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }

        /// A libzmq call failed (see `zmqErrno`).
        public static let zmq = Code(name: "zmq")
        /// A ROUTER has no connected peer with the routing id the message names.
        public static let unreachablePeer = Code(name: "unreachable_peer")
        /// The peer's queue is full (high-water mark reached); the message was not sent.
        public static let peerBusy = Code(name: "peer_busy")
        /// The socket or loop was closed.
        public static let closed = Code(name: "closed")
        /// An argument was out of range (e.g. an empty multipart message).
        public static let invalidArgument = Code(name: "invalid_argument")
    }

    public let code: Code
    public let message: String
    public let zmqErrno: Int32?

    public init(_ code: Code, _ message: String, zmqErrno: Int32? = nil) {
        self.code = code
        self.message = message
        self.zmqErrno = zmqErrno
    }

    /// The error libzmq just reported for `operation` (reads `zmq_errno`).
    static func lastZMQ(_ operation: String) -> TransportError {
        fromErrno(zmq_errno(), operation)
    }

    static func fromErrno(_ errno: Int32, _ operation: String) -> TransportError {
        let text = String(cString: zmq_strerror(errno))
        let code: Code =
            switch errno {
            case EHOSTUNREACH: .unreachablePeer
            case ETERM, ENOTSOCK: .closed
            default: .zmq
            }
        return TransportError(code, "\(operation): \(text) (errno \(errno))", zmqErrno: errno)
    }

    public var description: String { "\(code): \(message)" }
}
