import Foundation
import Logging
import Synchronization

/// Answers libzmq's ZAP requests (RFC 27) for CURVE server sockets of one context: a client whose
/// public key is in `allowed` gets in, any other is refused (and logged: one line per address and key
/// per `logInterval`, with a count of the refusals in between). Must run before the server socket
/// binds: without a handler, libzmq lets every CURVE client in.
// @unchecked: owns a libzmq socket (and its refusal log) used only by the authenticator's thread.
public final class ZAPAuthenticator: @unchecked Sendable {
    private let socket: ZMQSocket
    private let allowed: Set<String>
    private let logger: Logger
    /// Refusals by (address, key); used on the authenticator's thread only.
    private var refusals: RepeatLimiter<[String]>
    private let stopping = Mutex(false)

    public init(context: ZMQContext, allowed: Set<String>, logger: Logger, logInterval: Duration = .seconds(10)) throws(TransportError) {
        socket = try ZMQSocket(context: context, kind: .reply)
        _ = try socket.bind("inproc://zeromq.zap.01")
        self.allowed = allowed
        self.logger = logger
        refusals = RepeatLimiter(interval: logInterval)
        let thread = Thread { [self] in serve() }
        thread.name = "zap-authenticator"
        thread.start()
    }

    public func close() {
        stopping.withLock { $0 = true }
    }

    private func serve() {
        while !stopping.withLock({ $0 }) {
            for (peer, count) in refusals.expired(now: .now) {
                logger.warning(
                    "connections refused", metadata: refusalMetadata(peer).merging(["repeats": .stringConvertible(count)]) { $1 })
            }
            guard let request = try? socket.receive(timeout: .milliseconds(200)) else { continue }
            // version, request id, domain, address, routing id, mechanism, credentials…
            guard request.count >= 6 else { continue }
            let mechanism = String(decoding: request[5], as: UTF8.self)
            let key = request.count > 6 ? Curve.z85(request[6]) : nil
            let accepted = mechanism == "CURVE" && key.map(allowed.contains) == true
            if !accepted {
                let peer = [String(decoding: request[3], as: UTF8.self), mechanism, key ?? ""]
                let (log, held) = refusals.admit(peer, now: .now)
                if log {
                    var metadata = refusalMetadata(peer)
                    if held > 0 { metadata["repeats"] = .stringConvertible(held) }
                    logger.warning("connection refused", metadata: metadata)
                }
            }
            let reply: [[UInt8]] = [
                Array("1.0".utf8), request[1], Array((accepted ? "200" : "400").utf8),
                Array((accepted ? "OK" : "unknown key").utf8), Array((key ?? "").utf8), []
            ]
            _ = try? socket.send(reply)
        }
        socket.close()
    }

    /// `peer`: address, mechanism, key.
    private func refusalMetadata(_ peer: [String]) -> Logger.Metadata {
        [
            "peer": "\(peer[0])", "mechanism": "\(peer[1])",
            "error": "\(peer[2].isEmpty ? "no CURVE key" : "public key \(peer[2]) is not authorized")"
        ]
    }
}
