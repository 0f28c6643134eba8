import Foundation
import Testing

@testable import Cluster

/// The metrics server serves connections concurrently: a client trickling its request a byte a
/// second, and idle connections, do not hold up a scrape, and each connection is cut off once its
/// request deadline passes.
@Suite struct MetricsServerTests {
    @Test func slowAndIdleClientsDoNotHoldUpAScrape() throws {
        let metrics = Metrics()
        metrics.declareCounter("stagebeam_test_total", "A counter for the test.")
        metrics.inc("stagebeam_test_total")
        let server = try MetricsServer(metrics: metrics, port: 0, requestTimeout: .seconds(3))
        defer { server.close() }

        let idle = try (0..<8).map { _ in try LoopbackConnection(port: server.port) }
        let slow = try LoopbackConnection(port: server.port)
        let request = Array("GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n".utf8)
        let trickle = Thread {
            for byte in request.prefix(10) {
                guard slow.send([byte]) else { return }
                sleep(1)
            }
        }
        trickle.start()
        usleep(1_500_000)

        let started = Date()
        let scrape = try LoopbackConnection(port: server.port)
        #expect(scrape.send(request))
        let answer = String(decoding: scrape.readToEnd(), as: UTF8.self)
        let seconds = Date().timeIntervalSince(started)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"), "\(answer.prefix(200))")
        #expect(answer.contains("stagebeam_test_total 1"))
        // At once: not after the slow client's request, nor after the idle ones time out.
        #expect(seconds < 1, "the scrape took \(seconds) s")

        let ready = try LoopbackConnection(port: server.port)
        #expect(ready.send(Array("GET /ready HTTP/1.1\r\nHost: test\r\n\r\n".utf8)))
        #expect(String(decoding: ready.readToEnd(), as: UTF8.self).hasPrefix("HTTP/1.1 200 OK"))

        // The slow client never finished its request: the deadline closed its connection (and the
        // idle ones) without an answer.
        #expect(slow.readToEnd().isEmpty)
        #expect(idle[0].readToEnd().isEmpty)
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func loopbackByDefaultAndBadHostsRefused() throws {
        let server = try MetricsServer(metrics: Metrics(), port: 0)
        defer { server.close() }
        #expect(throws: ClusterError.self) { try MetricsServer(metrics: Metrics(), host: "metrics.example", port: 0) }
        #expect(throws: ClusterError.self) { try MetricsServer(metrics: Metrics(), host: "::1", port: 0) }
    }
}

/// A TCP connection to 127.0.0.1 with blocking reads (each read waits at most 10 s).
private final class LoopbackConnection: @unchecked Sendable { // a socket descriptor, used from one thread at a time
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ClusterError(.internal, "cannot connect to 127.0.0.1:\(port)") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Everything until the server closes the connection.
    func readToEnd() -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { return received }
            received += buffer[0..<count]
        }
    }
}
