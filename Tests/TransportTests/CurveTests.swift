import Foundation
import Logging
import Testing

@testable import Transport

/// CURVE over real loopback sockets: a client whose key the server knows talks; any other is shut out.
@Suite struct CurveTests {
    @Test func knownKeysConnectUnknownKeysDoNot() throws {
        let context = try ZMQContext()
        let server = try Curve.generateKeyPair(), known = try Curve.generateKeyPair(), stranger = try Curve.generateKeyPair()
        #expect(Curve.isKey(server.publicKey) && Curve.isKey(server.secretKey))
        #expect(try Curve.publicKey(ofSecret: known.secretKey) == known.publicKey)
        let authenticator = try ZAPAuthenticator(
            context: context, allowed: [known.publicKey], logger: Logger(label: "zap", factory: SwiftLogNoOpLogHandler.init))
        defer { authenticator.close() }

        let router = try ZMQSocket(context: context, kind: .router)
        try router.setCurve(.server(secretKey: server.secretKey))
        let endpoint = try router.bind("tcp://127.0.0.1:*")
        defer { router.close() }

        func dealer(_ keys: CurveKeyPair) throws -> ZMQSocket {
            let socket = try ZMQSocket(context: context, kind: .dealer)
            try socket.setCurve(.client(serverKey: server.publicKey, keys: keys))
            try socket.connect(endpoint)
            return socket
        }
        let friend = try dealer(known), intruder = try dealer(stranger)
        defer { friend.close(); intruder.close() }
        _ = try intruder.send([Array("let me in".utf8)], dontWait: true)
        _ = try friend.send([Array("hello".utf8)])
        let received = try #require(try router.receive(timeout: .seconds(5)))
        #expect(received.last == Array("hello".utf8))
        #expect(try router.receive(timeout: .milliseconds(500)) == nil, "the intruder's message never arrives")

        // A wrong server key (a client that does not know whom it talks to) gets nowhere either.
        let confused = try ZMQSocket(context: context, kind: .dealer)
        defer { confused.close() }
        try confused.setCurve(.client(serverKey: stranger.publicKey, keys: known))
        try confused.connect(endpoint)
        _ = try confused.send([Array("hi?".utf8)], dontWait: true)
        #expect(try router.receive(timeout: .milliseconds(500)) == nil)
    }

    @Test func malformedKeysAreRefusedByName() throws {
        let socket = try ZMQSocket(context: try ZMQContext(), kind: .dealer)
        defer { socket.close() }
        #expect { try socket.setCurve(.client(serverKey: "short", keys: try Curve.generateKeyPair())) } throws: {
            "\($0)".contains("ZMQ_CURVE_SERVERKEY")
        }
    }
}
