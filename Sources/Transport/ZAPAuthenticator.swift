import Foundation
import Logging

/// Answers libzmq's ZAP requests (RFC 27) for CURVE server sockets of one context: a client whose
/// public key is in `allowed` gets in, any other is refused (and logged). Must run before the server
/// socket binds: without a handler, libzmq lets every CURVE client in.
public final class ZAPAuthenticator: @unchecked Sendable {
    private let socket: ZMQSocket
    private let allowed: Set<String>
    private let logger: Logger
    private let lock = NSLock()
    private var stopping = false
    private var thread: Thread?

    public init(context: ZMQContext, allowed: Set<String>, logger: Logger) throws(TransportError) {
        socket = try ZMQSocket(context: context, kind: .reply)
        _ = try socket.bind("inproc://zeromq.zap.01")
        self.allowed = allowed
        self.logger = logger
        let thread = Thread { [self] in serve() }
        thread.name = "zap-authenticator"
        self.thread = thread
        thread.start()
    }

    public func close() {
        lock.withLock { stopping = true }
    }

    private func serve() {
        while !lock.withLock({ stopping }) {
            guard let request = try? socket.receive(timeout: .milliseconds(200)) else { continue }
            // version, request id, domain, address, routing id, mechanism, credentials…
            guard request.count >= 6 else { continue }
            let mechanism = String(decoding: request[5], as: UTF8.self)
            let key = request.count > 6 ? Curve.z85(request[6]) : nil
            let accepted = mechanism == "CURVE" && key.map(allowed.contains) == true
            if !accepted {
                logger.warning(
                    "connection refused",
                    metadata: [
                        "peer": "\(String(decoding: request[3], as: UTF8.self))", "mechanism": "\(mechanism)",
                        "error": "\(key.map { "public key \($0) is not authorized" } ?? "no CURVE key")"
                    ])
            }
            let reply: [[UInt8]] = [
                Array("1.0".utf8), request[1], Array((accepted ? "200" : "400").utf8),
                Array((accepted ? "OK" : "unknown key").utf8), Array((key ?? "").utf8), []
            ]
            _ = try? socket.send(reply)
        }
        socket.close()
    }
}
