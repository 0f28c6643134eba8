import Foundation
import Testing
import Wire

@Suite struct EnvelopeCodecTests {
    let codec = EnvelopeCodec()

    @Test func everyMessageTypeRoundTrips() throws {
        let samples = Samples.all
        // One sample per envelope body case (the cases are listed in EnvelopeCodec.name(of:)).
        #expect(Set(samples.map(EnvelopeCodec.name(of:))).count == samples.count)
        #expect(samples.count == 18)
        for body in samples {
            let frame = try codec.encode(body)
            #expect(try codec.decode(frame) == body, "\(EnvelopeCodec.name(of: body)) changed in a round trip")
        }
    }

    @Test(arguments: Samples.jobEvents) func everyJobEventRoundTrips(event: Stagebeam_V1_JobEvent) throws {
        #expect(try codec.decode(codec.encode(.jobEvent(event))) == .jobEvent(event))
    }

    /// The single-field oneof keeps "unset" apart from false: unset force_tags means the default (true).
    @Test func forceTagsPresenceSurvives() throws {
        var submit = Stagebeam_V1_SubmitJob()
        submit.question = "q"
        guard case .submitJob(let unset) = try codec.decode(codec.encode(.submitJob(submit))) else {
            Issue.record("wrong body"); return
        }
        #expect(unset.forceTagsPresence == nil)
        submit.forceTags = false
        guard case .submitJob(let setFalse) = try codec.decode(codec.encode(.submitJob(submit))) else {
            Issue.record("wrong body"); return
        }
        #expect(setFalse.forceTagsPresence == .forceTags(false))
    }

    @Test func encodeStampsTheProtocolVersion() throws {
        let frame = try codec.encode(.statusRequest(Stagebeam_V1_StatusRequest()))
        #expect(try Stagebeam_V1_Envelope(serializedBytes: frame).protocolVersion == EnvelopeCodec.protocolVersion)
    }

    func expectError(_ code: Stagebeam_V1_ErrorCode, decoding frame: [UInt8], codec: EnvelopeCodec? = nil) {
        do {
            let body = try (codec ?? self.codec).decode(frame)
            Issue.record("expected \(code), decoded \(EnvelopeCodec.name(of: body))")
        } catch {
            #expect(error.code == code, "\(error)")
            #expect(!error.message.isEmpty)
        }
    }

    @Test func wrongVersionIsRefused() throws {
        var envelope = Stagebeam_V1_Envelope()
        envelope.protocolVersion = EnvelopeCodec.protocolVersion + 1
        envelope.heartbeat = Stagebeam_V1_Heartbeat()
        expectError(.versionMismatch, decoding: try envelope.serializedBytes())
        envelope.protocolVersion = 0
        expectError(.versionMismatch, decoding: try envelope.serializedBytes())
    }

    /// Ranges that overlap are served in the highest common version; others are refused naming both.
    @Test func versionRangesAreNegotiated() throws {
        var envelope = Stagebeam_V1_Envelope()
        envelope.heartbeat = Stagebeam_V1_Heartbeat()
        // A version-1 peer (no range): read, and answered in version 1.
        envelope.protocolVersion = 1
        #expect(try codec.decodeEnvelope(envelope.serializedBytes()).version == 1)
        // A newer peer that still speaks this build's newest version: answered in it.
        envelope.protocolVersion = EnvelopeCodec.protocolVersion + 3
        envelope.minProtocolVersion = EnvelopeCodec.protocolVersion
        #expect(try codec.decodeEnvelope(envelope.serializedBytes()).version == EnvelopeCodec.protocolVersion)
        // A newer peer that no longer speaks it: refused, both ranges named.
        envelope.minProtocolVersion = EnvelopeCodec.protocolVersion + 1
        let disjoint: [UInt8] = try envelope.serializedBytes()
        do {
            _ = try codec.decodeEnvelope(disjoint)
            Issue.record("a disjoint range was accepted")
        } catch {
            #expect(error.code == .versionMismatch)
            let theirs = "\(EnvelopeCodec.protocolVersion + 1)…\(EnvelopeCodec.protocolVersion + 3)"
            let ours = "\(EnvelopeCodec.oldestProtocolVersion)…\(EnvelopeCodec.protocolVersion)"
            #expect(error.message.contains(theirs) && error.message.contains(ours), "\(error.message)")
        }
        // Frames written for an older peer carry its version and this build's range.
        let old = try Stagebeam_V1_Envelope(serializedBytes: codec.encode(.heartbeat(Stagebeam_V1_Heartbeat()), version: 1))
        #expect(old.protocolVersion == 1 && old.minProtocolVersion == EnvelopeCodec.oldestProtocolVersion)
    }

    @Test func unknownMessageTypeIsNamed() {
        // version = 1, then field 99 (not in the schema), length-delimited, 2 bytes.
        expectError(.unknownMessage, decoding: [0x08, 0x01, 0x9A, 0x06, 0x02, 0x08, 0x01])
    }

    @Test func envelopeWithoutBodyIsMalformed() {
        expectError(.malformedFrame, decoding: [0x08, 0x01])
        expectError(.malformedFrame, decoding: [])
    }

    @Test func invalidUTF8InAStringIsMalformed() {
        // version = 1; ready (field 10) { worker_id (field 2) = 0xFF 0xFE }.
        expectError(.malformedFrame, decoding: [0x08, 0x01, 0x52, 0x04, 0x12, 0x02, 0xFF, 0xFE])
    }

    @Test func oversizedFramesAreRefusedBothWays() throws {
        let small = EnvelopeCodec(maxFrameBytes: 1000)
        var submit = Stagebeam_V1_SubmitJob()
        submit.image = Data(repeating: 7, count: 2000)
        do {
            _ = try small.encode(.submitJob(submit))
            Issue.record("encoded a frame over the limit")
        } catch {
            #expect(error.code == .messageTooLarge)
        }
        let frame = try codec.encode(.submitJob(submit))
        expectError(.messageTooLarge, decoding: frame, codec: small)
    }

    @Test func wireErrorBecomesAnErrorMessageForThePeer() {
        let error = WireError(.versionMismatch, "peer sent protocol version 9")
        let message = error.errorMessage(requestID: "r-1", jobID: "j-1")
        #expect(message.code == .versionMismatch)
        #expect(message.message == "peer sent protocol version 9")
        #expect(message.requestID == "r-1" && message.jobID == "j-1")
    }
}

/// Untrusted bytes never crash the decoder: random frames, and valid frames with bytes flipped,
/// truncated or spliced. Every outcome is a typed error or a well-formed message.
@Suite struct EnvelopeFuzzTests {
    let codec = EnvelopeCodec(maxFrameBytes: 1 << 20)
    static let expectedCodes: Set<Stagebeam_V1_ErrorCode> = [.malformedFrame, .versionMismatch, .unknownMessage, .messageTooLarge]

    /// Decodes and checks that any error is one of the frame-level codes. Returns whether it decoded.
    @discardableResult
    func probe(_ frame: [UInt8]) -> Bool {
        do {
            _ = try codec.decode(frame)
            return true
        } catch {
            #expect(Self.expectedCodes.contains(error.code), "\(error)")
            return false
        }
    }

    @Test func randomBytes() {
        var rng = SplitMix64(seed: 1)
        var decoded = 0
        for _ in 0..<3000 {
            let count = Int(rng.next() % 300)
            let frame = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if probe(frame) { decoded += 1 }
        }
        // Random bytes almost never form a version-1 envelope with a body.
        #expect(decoded < 10)
    }

    @Test func mutatedValidFrames() throws {
        var rng = SplitMix64(seed: 2)
        for body in Samples.all {
            let frame = try codec.encode(body)
            for length in 0..<frame.count { probe(Array(frame[..<length])) }
            for _ in 0..<200 {
                var mutated = frame
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    mutated[Int(rng.next() % UInt64(mutated.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
                probe(mutated)
                let cut = Int(rng.next() % UInt64(frame.count))
                probe(Array(frame[..<cut]) + Array(frame[cut...]) + Array(frame[cut...]))
            }
        }
    }
}

/// A small seeded generator, so fuzz failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
