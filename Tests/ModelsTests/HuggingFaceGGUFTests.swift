import Foundation
import ModelFormats
import Testing

@testable import Models

/// `stagebeam quantize --model DIR` against llama.cpp's own tools on the same checkpoints
/// (scripts/fixtures/make_quantize_fixtures.py): convert_hf_to_gguf.py for F16, llama-quantize for
/// Q8_0 and Q4_0 (`--pure`) and Q4_K_M from the converter's f32 file. Every tensor has the name, the
/// type, the dimensions and the bytes (by fingerprint) llama.cpp wrote, and every model key its value.
@Suite struct HuggingFaceGGUFTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    struct Reference {
        let metadata: [String: Any]
        /// type → (file_type, tensor name → (ggml type, dimensions, FNV-1a 64 of the bytes)).
        let files: [String: (fileType: Int, tensors: [String: (type: String, dimensions: [Int], fingerprint: String)])]

        init(_ model: String) throws {
            let url = HuggingFaceGGUFTests.fixtures.appendingPathComponent("quantize/\(model).json")
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            metadata = json["metadata"] as! [String: Any]
            var files: [String: (Int, [String: (String, [Int], String)])] = [:]
            for (type, file) in json["files"] as! [String: [String: Any]] {
                let tensors = (file["tensors"] as! [String: [Any]]).mapValues { ($0[0] as! String, $0[1] as! [Int], $0[2] as! String) }
                files[type] = (file["file_type"] as! Int, tensors)
            }
            self.files = files
        }
    }

    static func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(format: "%016llx", hash)
    }

    /// A written value against the reference's JSON value, compared in the written value's type.
    static func equal(_ written: GGUFValue?, _ value: Any) -> Bool {
        switch written {
        case .string(let text): return value as? String == text
        case .float32(let number): return (value as? NSNumber).map { Float($0.doubleValue) == number } ?? false
        case .bool(let flag): return (value as? NSNumber)?.boolValue == flag
        case .some(let other):
            guard let integer = other.integer else { return false }
            return (value as? NSNumber)?.intValue == integer
        case nil: return false
        }
    }

    @Test(arguments: ["llama-sharded-bf16", "qwen2", "llama3-rope-tied-bias"], ["F16", "Q8_0", "Q4_0", "Q4_K_M"])
    func writesTheTensorsAndKeysLlamaCppWrites(model: String, type: String) throws {
        let reference = try Reference(model)
        let expected = reference.files[type]!
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("hf-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: output) }
        let types = try HuggingFaceGGUF.convert(
            directory: Self.fixtures.appendingPathComponent("models/\(model)"), to: output,
            as: GGUFQuantization.fileType(named: type)!, tokenizer: [])
        let file = try GGUFFile(url: output)

        #expect(Set(file.tensorNames) == Set(expected.tensors.keys))
        for (name, tensor) in expected.tensors {
            guard let info = file.tensors[name] else { continue }
            #expect(info.type.name.uppercased() == tensor.type, "\(name)")
            #expect(types[name] == info.type)
            #expect(info.dimensions == tensor.dimensions, "\(name)")
            #expect(Self.fnv1a64(file.bytes(of: info)) == tensor.fingerprint, "\(name): bytes differ from llama.cpp's")
        }
        #expect(file.metadata["general.file_type"]?.integer == expected.fileType)
        for (key, value) in reference.metadata where !key.hasPrefix("tokenizer.") && key != "general.file_type" {
            #expect(Self.equal(file.metadata[key], value), "\(key): \(String(describing: file.metadata[key])) against \(value)")
        }
        let ours = Set(file.metadataKeys.filter { !$0.hasPrefix("general.name") })
        let theirs = Set(reference.metadata.keys.filter { !$0.hasPrefix("tokenizer.") })
        #expect(
            ours == theirs,
            "keys only here: \(ours.subtracting(theirs).sorted()), only in llama.cpp's: \(theirs.subtracting(ours).sorted())")
    }

    /// The mixes' choices on a 32-layer model with 4096-wide rows, as llama-quantize makes them.
    @Test func mixesFollowLlamaQuantize() {
        let names = ["token_embd.weight", "output.weight"] + (0..<32).flatMap { ["blk.\($0).attn_v.weight", "blk.\($0).ffn_down.weight"] }
        let mix = MatrixFormats(.q4_K_M, matrixNames: names)
        #expect(mix.element(for: "output.weight", columns: 4096) == .q6_K)
        #expect(mix.element(for: "token_embd.weight", columns: 4096) == .q4_K)
        // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2.
        let more = (0..<32).filter { mix.element(for: "blk.\($0).attn_v.weight", columns: 4096) == .q6_K }
        #expect(more == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31])
        #expect((0..<32).filter { mix.element(for: "blk.\($0).ffn_down.weight", columns: 14336) == .q6_K } == more)
        #expect(mix.element(for: "blk.4.ffn_down.weight", columns: 14336) == .q4_K)
        #expect(mix.element(for: "blk.4.ffn_down.weight", columns: 11008 + 32) == .q5_0)
        #expect(mix.element(for: "blk.0.ffn_down.weight", columns: 11008 + 32) == .q8_0)
        #expect(MatrixFormats(.q5_K_M, matrixNames: names).element(for: "blk.4.attn_q.weight", columns: 4096) == .q5_K)
        // Tied embeddings: the embedding is the output matrix.
        let tied = MatrixFormats(.q5_K_M, matrixNames: names.filter { $0 != "output.weight" })
        #expect(tied.element(for: "token_embd.weight", columns: 4096) == .q6_K)
        #expect(tied.element(for: "token_embd.weight", columns: 896 + 32) == .q8_0)
    }

    /// The built-in vision model is refused with the reason.
    @Test func visionCheckpointsAreRefused() throws {
        let builtIn = Self.fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
            "models/stagebeam-shapes")
        #expect {
            try HuggingFaceGGUF.checkArchitecture(builtIn)
        } throws: { error in
            guard let error = error as? ModelFormatError else { return false }
            return error.code == .unsupportedArchitecture && error.message.contains("vision-language model")
        }
    }

    /// llama's query rows: each head's rotate-half halves interleaved.
    @Test func queryRowsAreInterleavedPerHead() {
        // 2 heads of 4 rows: head 0 rows 0 1 | 2 3 → 0 2 1 3; head 1 → 4 6 5 7.
        #expect((0..<8).map { HuggingFaceGGUF.sourceRow($0, rows: 8, heads: 2) } == [0, 2, 1, 3, 4, 6, 5, 7])
    }
}
