import SwiftProtobuf

/// Turns messages into envelope frames and back, enforcing the frame size limit and the protocol
/// version. Decoding never traps on untrusted bytes: every failure is a `WireError`.
public struct EnvelopeCodec: Sendable {
    /// The protocol version this build speaks.
    public static let protocolVersion = UInt32(Stagebeam_V1_ProtocolVersion.current.rawValue)
    /// Default frame limit: room for a large image (which crosses the wire inside one envelope).
    public static let defaultMaxFrameBytes = 64 << 20

    /// Frames longer than this are refused before parsing, and never produced.
    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int = EnvelopeCodec.defaultMaxFrameBytes) {
        precondition(maxFrameBytes > 0, "maxFrameBytes must be positive")
        self.maxFrameBytes = maxFrameBytes
    }

    /// One envelope frame carrying `body` with this build's protocol version.
    public func encode(_ body: Stagebeam_V1_Envelope.OneOf_Body) throws(WireError) -> [UInt8] {
        var envelope = Stagebeam_V1_Envelope()
        envelope.protocolVersion = Self.protocolVersion
        envelope.body = body
        let frame: [UInt8]
        do {
            frame = try envelope.serializedBytes()
        } catch {
            throw WireError(.internal, "cannot serialize \(Self.name(of: body))", underlying: error)
        }
        // Refuse to send what the receiver would refuse to read.
        guard frame.count <= maxFrameBytes else {
            throw WireError(.messageTooLarge, "\(Self.name(of: body)) is \(frame.count) bytes, over the \(maxFrameBytes)-byte frame limit")
        }
        return frame
    }

    /// The message in an envelope frame from a peer.
    public func decode(_ frame: [UInt8]) throws(WireError) -> Stagebeam_V1_Envelope.OneOf_Body {
        guard frame.count <= maxFrameBytes else {
            throw WireError(.messageTooLarge, "frame is \(frame.count) bytes, over the \(maxFrameBytes)-byte limit")
        }
        guard !frame.isEmpty else { throw WireError(.malformedFrame, "empty frame where an envelope was expected") }
        let envelope: Stagebeam_V1_Envelope
        do {
            envelope = try Stagebeam_V1_Envelope(serializedBytes: frame)
        } catch {
            throw WireError(.malformedFrame, "frame of \(frame.count) bytes is not a protobuf Envelope", underlying: error)
        }
        // The version comes before the body: a newer peer's unknown message types must read as a
        // version problem, not as garbage.
        guard envelope.protocolVersion == Self.protocolVersion else {
            let theirs = envelope.protocolVersion == 0 ? "no protocol version" : "protocol version \(envelope.protocolVersion)"
            throw WireError(.versionMismatch, "peer sent \(theirs); this build speaks version \(Self.protocolVersion)")
        }
        guard let body = envelope.body else {
            if envelope.unknownFields.data.isEmpty {
                throw WireError(.malformedFrame, "envelope carries no message")
            }
            throw WireError(.unknownMessage, "envelope carries a message type this build does not know")
        }
        return body
    }

    /// The protobuf name of a message, for errors and logs (e.g. "generate_request").
    public static func name(of body: Stagebeam_V1_Envelope.OneOf_Body) -> String {
        switch body {
        case .ready: "ready"
        case .heartbeat: "heartbeat"
        case .disconnect: "disconnect"
        case .generateRequest: "generate_request"
        case .generateResult: "generate_result"
        case .judgeRequest: "judge_request"
        case .judgeResult: "judge_result"
        case .submitJob: "submit_job"
        case .jobAccepted: "job_accepted"
        case .jobEvent: "job_event"
        case .jobResult: "job_result"
        case .statusRequest: "status_request"
        case .statusReply: "status_reply"
        case .error: "error"
        }
    }
}
