import Foundation
import Testing
import Transport

/// The raw socket API on one thread: endpoints, multipart integrity, timeouts, errors.
@Suite struct SocketTests {
    @Test func largeMultipartFramesArriveIntact() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, kind: .router)
        let endpoint = try router.bind(anyLoopbackPort)
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":*"))
        let dealer = try ZMQSocket(context: context, kind: .dealer)
        try dealer.setRoutingID(bytes("dealer-1"))
        try dealer.connect(endpoint)

        let big = try randomBytes(4 << 20)
        let medium = try randomBytes((3 << 20) + 17)
        let frames: [[UInt8]] = [big, [], [0x2a], medium]
        try dealer.send(frames)

        let received = try #require(try router.receive(timeout: .seconds(10)))
        #expect(received.count == 5)
        #expect(received[0] == bytes("dealer-1"))
        #expect(Array(received.dropFirst()) == frames)

        // And back, addressed by routing id.
        try router.send([received[0]] + frames.reversed())
        let reply = try #require(try dealer.receive(timeout: .seconds(10)))
        #expect(reply == Array(frames.reversed()))
    }

    @Test func receiveTimesOut() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, kind: .router)
        _ = try router.bind(anyLoopbackPort)
        let start = ContinuousClock.now
        #expect(try router.receive(timeout: .milliseconds(100)) == nil)
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(100))
        #expect(waited < .seconds(2))
        #expect(try router.receive(dontWait: true) == nil)
    }

    @Test func routerReportsAnUnknownPeer() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, kind: .router)
        try router.setRouterMandatory(true)
        _ = try router.bind(anyLoopbackPort)
        #expect {
            try router.send([bytes("nobody"), bytes("hello")])
        } throws: { error in
            (error as? TransportError)?.code == .unreachablePeer
        }
    }

    @Test func badEndpointsAndClosedSocketsGiveClearErrors() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, kind: .dealer)
        do {
            try socket.connect("carrier-pigeon://nowhere")
            Issue.record("connected to a nonsense endpoint")
        } catch {
            #expect(error.code == .zmq)
            #expect(error.zmqErrno != nil)
            #expect(error.message.contains("carrier-pigeon://nowhere"))
        }
        #expect(throws: TransportError.self) { try socket.setRoutingID([0, 1]) }
        #expect(throws: TransportError.self) { try socket.send([]) }

        let first = try ZMQSocket(context: context, kind: .router)
        let endpoint = try first.bind(anyLoopbackPort)
        let second = try ZMQSocket(context: context, kind: .router)
        #expect(throws: TransportError.self) { try second.bind(endpoint) }

        socket.close()
        #expect(!socket.isOpen)
        do {
            _ = try socket.receive(dontWait: true)
            Issue.record("received on a closed socket")
        } catch {
            #expect(error.code == .closed)
        }
    }
}

/// Random bytes from the kernel (fast even in debug builds, unlike a per-byte generator loop).
func randomBytes(_ count: Int) throws -> [UInt8] {
    let handle = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
    defer { try? handle.close() }
    let data = try #require(try handle.read(upToCount: count))
    try #require(data.count == count)
    return [UInt8](data)
}
