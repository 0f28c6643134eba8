import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A tiny HTTP/1.1 server for Prometheus: `GET /metrics` answers the registry's text exposition,
/// `GET /ready` 200 or 503 for readiness probes (Kubernetes), anything else 404 (or 405 for another
/// method). One connection at a time on its own thread, each
/// closed after its answer — a scraper every few seconds needs no more. POSIX sockets, no dependency.
public final class MetricsServer: @unchecked Sendable {
    /// The port actually bound (useful with port 0: any free one).
    public let port: Int
    private let listener: Int32
    private let metrics: Metrics
    private let ready: @Sendable () -> Bool
    private let thread: Thread?
    private let lock = NSLock()
    private var closed = false

    /// Listens on `host` (an IPv4 address; 0.0.0.0 for all interfaces) and `port`.
    /// `ready` answers `/ready` (a worker: connected to its coordinator).
    public init(metrics: Metrics, host: String = "127.0.0.1", port: Int, ready: @escaping @Sendable () -> Bool = { true }) throws {
        self.metrics = metrics
        self.ready = ready
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClusterError(.internal, "metrics: cannot create a socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port)).bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            Glibc.close(fd)
            throw ClusterError(.invalidArgument, "metrics: '\(host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw ClusterError(.invalidArgument, "metrics: cannot listen on \(host):\(port): \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        listener = fd
        let serve = Thread { [metrics] in Self.acceptLoop(fd, metrics: metrics, ready: ready) }
        serve.name = "metrics-http"
        thread = serve
        serve.start()
    }

    /// Stops listening (the accept loop ends).
    public func close() {
        let first = lock.withLock {
            defer { closed = true }; return !closed
        }
        guard first else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private static func acceptLoop(_ listener: Int32, metrics: Metrics, ready: @Sendable () -> Bool) {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return // closed
            }
            // A client that sends nothing must not hold the only thread.
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            respond(connection, metrics: metrics, ready: ready)
            Glibc.close(connection)
        }
    }

    private static func respond(_ connection: Int32, metrics: Metrics, ready: @Sendable () -> Bool) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while request.count < 16384, !request.ends(with: [13, 10, 13, 10]) {
            let count = read(connection, &buffer, buffer.count)
            if count <= 0 { break }
            request += buffer[0..<count]
            if request.firstRange(of: [13, 10, 13, 10]) != nil { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        let (status, type, body): (String, String, String)
        if line.count < 2 {
            (status, type, body) = ("400 Bad Request", "text/plain", "bad request\n")
        } else if line[0] != "GET" && line[0] != "HEAD" {
            (status, type, body) = ("405 Method Not Allowed", "text/plain", "only GET\n")
        } else if line[1] == "/metrics" || line[1].hasPrefix("/metrics?") {
            (status, type, body) = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render())
        } else if line[1] == "/ready" {
            (status, type, body) = ready() ? ("200 OK", "text/plain", "ready\n") : ("503 Service Unavailable", "text/plain", "not ready\n")
        } else {
            (status, type, body) = ("404 Not Found", "text/plain", "try /metrics or /ready\n")
        }
        let payload = Array(body.utf8)
        var response = Array(
            "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n".utf8)
        if line.first != "HEAD" { response += payload }
        var offset = 0
        while offset < response.count {
            let written = response[offset...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
