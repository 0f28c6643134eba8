import CZeroMQ

/// ZeroMQ CURVE: every connection encrypted and authenticated with Curve25519 keys. The server
/// (the coordinator) has a key pair and knows the public keys it accepts; a client (worker or
/// client) has its own key pair and knows the server's public key. Keys travel as 40 Z85 characters.
public enum Curve {
    /// The ZAP domain the coordinator's socket asks its authenticator about.
    static let zapDomain = "stagebeam"

    /// A new random key pair.
    public static func generateKeyPair() throws(TransportError) -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41), secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else {
            throw TransportError.lastZMQ("zmq_curve_keypair (is libzmq built with CURVE?)")
        }
        return CurveKeyPair(publicKey: text(publicKey), secretKey: text(secretKey))
    }

    /// The public key of a secret key.
    public static func publicKey(ofSecret secretKey: String) throws(TransportError) -> String {
        guard isKey(secretKey) else { throw TransportError(.invalidArgument, "a CURVE secret key is 40 Z85 characters") }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else { throw TransportError.lastZMQ("zmq_curve_public") }
        return text(publicKey)
    }

    /// Whether `text` has the shape of a Z85-encoded 32-byte key.
    public static func isKey(_ text: String) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { z85Alphabet.contains($0) }
    }

    /// Z85 text of 32 raw key bytes (what ZAP requests carry).
    static func z85(_ key: [UInt8]) -> String? {
        guard key.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        return zmq_z85_encode(&text, key, key.count) == nil ? nil : Self.text(text)
    }

    /// The text libzmq wrote into `buffer`, up to its terminating NUL.
    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static let z85Alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)
}

public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }
}

/// A socket's side of CURVE.
public enum CurveRole: Sendable, Equatable {
    /// The accepting side (the coordinator), with its secret key.
    case server(secretKey: String)
    /// A connecting side (worker, client): the server's public key and its own pair.
    case client(serverKey: String, keys: CurveKeyPair)
}
