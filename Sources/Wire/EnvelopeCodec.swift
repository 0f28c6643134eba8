import SwiftProtobuf

/// Turns messages into envelope frames and back, enforcing the frame size limit and the protocol
/// version range. Decoding never traps on untrusted bytes: every failure is a `WireError`.
///
/// Versions: each envelope carries the version it is written in and the oldest its sender also
/// speaks. A frame is read when that range overlaps this build's (`oldestProtocolVersion` …
/// `protocolVersion`), and the answer goes out in `Envelope.version`, the highest version both
/// speak. Versions only add fields and messages, so writing an older version is stamping it: the
/// older peer skips what it does not know.
public struct EnvelopeCodec: Sendable {
    /// The newest protocol version this build speaks (and writes by default).
    public static let protocolVersion = UInt32(Stagebeam_V1_ProtocolVersion.current.rawValue)
    /// The oldest protocol version this build still reads and writes.
    public static let oldestProtocolVersion = UInt32(Stagebeam_V1_ProtocolVersion.oldestSupported.rawValue)

    /// A decoded envelope: its message, and the version to answer its sender in.
    public struct Envelope: Sendable {
        public var body: Stagebeam_V1_Envelope.OneOf_Body
        /// The highest version both sides speak.
        public var version: UInt32
    }
    /// Default frame limit: room for a large image (which crosses the wire inside one envelope).
    public static let defaultMaxFrameBytes = 64 << 20

    /// Frames longer than this are refused before parsing, and never produced.
    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int = EnvelopeCodec.defaultMaxFrameBytes) {
        precondition(maxFrameBytes > 0, "maxFrameBytes must be positive")
        self.maxFrameBytes = maxFrameBytes
    }

    /// One envelope frame carrying `body`, written in `version` (this build's newest by default; a
    /// peer's negotiated version, `Envelope.version`, when answering it).
    public func encode(
        _ body: Stagebeam_V1_Envelope.OneOf_Body, version: UInt32 = EnvelopeCodec.protocolVersion
    ) throws(WireError) -> [UInt8] {
        var envelope = Stagebeam_V1_Envelope()
        envelope.protocolVersion = version
        // Version-1 peers know no range: to them this field is unknown and skipped.
        envelope.minProtocolVersion = Self.oldestProtocolVersion
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
        try decodeEnvelope(frame).body
    }

    /// The message in an envelope frame from a peer, with the version to answer it in.
    public func decodeEnvelope(_ frame: [UInt8]) throws(WireError) -> Envelope {
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
        let version = try Self.negotiate(newest: envelope.protocolVersion, oldest: envelope.minProtocolVersion)
        guard let body = envelope.body else {
            if envelope.unknownFields.data.isEmpty {
                throw WireError(.malformedFrame, "envelope carries no message")
            }
            throw WireError(.unknownMessage, "envelope carries a message type this build does not know")
        }
        return Envelope(body: body, version: version)
    }

    /// The highest version in both this build's range and a peer's (`oldest` 0: the peer speaks
    /// `newest` only), or a `versionMismatch` naming both ranges.
    static func negotiate(newest: UInt32, oldest: UInt32) throws(WireError) -> UInt32 {
        guard newest != 0 else {
            throw WireError(
                .versionMismatch,
                "peer sent no protocol version; this build speaks versions \(Self.oldestProtocolVersion)…\(Self.protocolVersion)")
        }
        let peerOldest = oldest == 0 ? newest : min(oldest, newest)
        let common = min(newest, Self.protocolVersion)
        guard common >= max(peerOldest, Self.oldestProtocolVersion) else {
            let theirs = peerOldest == newest ? "protocol version \(newest)" : "protocol versions \(peerOldest)…\(newest)"
            throw WireError(
                .versionMismatch,
                "peer speaks \(theirs); this build speaks versions \(Self.oldestProtocolVersion)…\(Self.protocolVersion)")
        }
        return common
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
        case .rewardRequest: "reward_request"
        case .rewardResult: "reward_result"
        case .submitJob: "submit_job"
        case .jobAccepted: "job_accepted"
        case .jobEvent: "job_event"
        case .jobResult: "job_result"
        case .statusRequest: "status_request"
        case .statusReply: "status_reply"
        case .cancelJob: "cancel_job"
        case .getJob: "get_job"
        case .listJobs: "list_jobs"
        case .jobList: "job_list"
        case .error: "error"
        case .stopRequests: "stop_requests"
        case .generateProgress: "generate_progress"
        }
    }
}
