import CZeroMQ
import Glibc
import Synchronization

/// A connection whose security handshake failed, as libzmq's socket monitor reports it.
public struct HandshakeFailure: Sendable, Equatable {
    /// The endpoint the connection came in on, e.g. `tcp://0.0.0.0:5555`. libzmq 4.3's monitor
    /// (event format 1) names a bound socket's own endpoint here, not the peer's address; the
    /// format that carries both (2) is a draft API that Debian's libzmq does not build.
    public let endpoint: String
    /// What went wrong, in words (e.g. "the client offered no CURVE keys (security mechanism mismatch)").
    public let reason: String
    /// libzmq's event: `handshake_failed_protocol`, `handshake_failed_auth` or `handshake_failed_no_detail`.
    public let event: String
}

/// Watches one socket for failed security handshakes (libzmq's `zmq_socket_monitor`): a client
/// without CURVE keys at a CURVE server, a client that has the wrong server key, a key the ZAP
/// handler refused. libzmq drops such connections without telling the socket's owner; the monitor
/// reads its events from an inproc PAIR socket.
///
/// Used by the thread that owns the watched socket (like the socket itself), and closed before it.
final class HandshakeMonitor {
    static let events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH

    /// Unique inproc endpoints within the process (a context's endpoints must not repeat).
    private static let counter = Atomic<Int>(0)

    let receiver: ZMQSocket
    private let watched: ZMQSocket

    /// Starts monitoring `socket`; call before it binds or connects so that no event is missed.
    init(context: ZMQContext, watching socket: ZMQSocket) throws(TransportError) {
        let endpoint = "inproc://stagebeam-handshake-monitor-\(Self.counter.add(1, ordering: .relaxed).newValue)"
        guard zmq_socket_monitor(try socket.open(), endpoint, Self.events) == 0 else {
            throw TransportError.lastZMQ("zmq_socket_monitor \(endpoint)")
        }
        watched = socket
        receiver = try ZMQSocket(context: context, kind: .pair)
        try receiver.connect(endpoint)
    }

    /// The failures reported since the last call (never blocks).
    func drain() -> [HandshakeFailure] {
        var failures: [HandshakeFailure] = []
        while let frames = try? receiver.receive(dontWait: true) {
            if let failure = Self.parse(frames) { failures.append(failure) }
        }
        return failures
    }

    /// Stops monitoring and closes the receiving socket (before the watched socket closes).
    func close() {
        if let handle = try? watched.open() { zmq_socket_monitor(handle, nil, 0) }
        receiver.close()
    }

    /// A monitor event: frame 0 is the event (16 bits) and its value (32 bits), in host byte order;
    /// frame 1 an endpoint (see `HandshakeFailure.endpoint`).
    static func parse(_ frames: [[UInt8]]) -> HandshakeFailure? {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let (event, value) = frames[0].withUnsafeBytes {
            (Int32($0.loadUnaligned(as: UInt16.self)), $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        }
        let endpoint = String(decoding: frames[1], as: UTF8.self)
        switch event {
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            return HandshakeFailure(endpoint: endpoint, reason: protocolError(value), event: "handshake_failed_protocol")
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            return HandshakeFailure(
                endpoint: endpoint, reason: "the authenticator refused the client's key (ZAP status \(value))",
                event: "handshake_failed_auth")
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            // A client without CURVE keys often sees the mechanism mismatch first and hangs up; the
            // server then only learns that the peer went away mid-handshake.
            let errno = Int32(bitPattern: value)
            let reason =
                errno == EPIPE || errno == ECONNRESET
                ? "the peer closed the connection during the handshake (e.g. a client without CURVE keys)"
                : "handshake failed: \(String(cString: zmq_strerror(errno)))"
            return HandshakeFailure(endpoint: endpoint, reason: reason, event: "handshake_failed_no_detail")
        default:
            return nil
        }
    }

    /// libzmq's `ZMQ_PROTOCOL_ERROR_*` codes, in words.
    static func protocolError(_ code: UInt32) -> String {
        switch Int32(bitPattern: code) {
        case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            "the peer's security mechanism differs from this socket's (e.g. a client without CURVE keys)"
        case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
            "the CURVE handshake did not decrypt (e.g. the client has the wrong server key)"
        case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
            "the CURVE key exchange failed"
        case ZMQ_PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND, ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_SEQUENCE:
            "the peer sent handshake commands out of order"
        case ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_UNSPECIFIED...ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_METADATA:
            "the peer sent a malformed handshake command (protocol error 0x\(String(code, radix: 16)))"
        case ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED...ZMQ_PROTOCOL_ERROR_ZAP_INVALID_METADATA:
            "the authenticator's answer was unusable (protocol error 0x\(String(code, radix: 16)))"
        default:
            "protocol error 0x\(String(code, radix: 16))"
        }
    }
}
