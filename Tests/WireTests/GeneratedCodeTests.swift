import Foundation
import Testing
import Wire

/// The generated Swift must come from the current schema: scripts/gen-proto.sh records the
/// schema's SHA-256 next to the code it generates.
@Suite struct GeneratedCodeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func generatedCodeMatchesSchema() throws {
        let schema = try Data(contentsOf: Self.root.appendingPathComponent("proto/stagebeam.proto"))
        let recordURL = Self.root.appendingPathComponent("Sources/Wire/Generated/stagebeam.proto.sha256")
        let recorded = try String(contentsOf: recordURL, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(
            recorded == ContentHash.sha256Hex(schema),
            "Sources/Wire/Generated is stale: proto/stagebeam.proto changed; run scripts/gen-proto.sh")
    }

    /// The version constants the codec stamps on every envelope come from the schema's enum.
    @Test func protocolVersionComesFromSchema() {
        #expect(EnvelopeCodec.protocolVersion == 2 && EnvelopeCodec.oldestProtocolVersion == 1)
        #expect(Stagebeam_V1_ProtocolVersion.allCases.map(\.rawValue).max() == Int(EnvelopeCodec.protocolVersion))
    }
}
