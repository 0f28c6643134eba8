import Foundation
import ModelFormats
import Testing

@testable import Tokenization

/// The `tokenizer.ggml.*` keys written for a Hugging Face checkpoint against those llama.cpp's
/// convert_hf_to_gguf.py wrote for it (scripts/fixtures/make_quantize_fixtures.py), and the
/// converter's check hash against the `tokenizers` library's ids.
@Suite struct GGUFTokenizerExportTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    @Test(arguments: [("llama-sharded-bf16", "llama-bpe"), ("qwen2", "qwen2"), ("llama3-rope-tied-bias", "llama-bpe")])
    func keysEqualTheConverters(model: String, preName: String) throws {
        let reference =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: Self.fixtures.appendingPathComponent("quantize/\(model).json"))) as! [String: Any]
        let expected = (reference["metadata"] as! [String: Any]).filter { $0.key.hasPrefix("tokenizer.") }
        let tokens = expected["tokenizer.ggml.tokens"] as! [String]
        let directory = Self.fixtures.appendingPathComponent("models/\(model)")
        let export = try GGUFTokenizerExport(directory: directory, vocabularySize: tokens.count)

        #expect(export.preTokenizerName == preName)
        let tokenizer = try Tokenizer(contentsOf: directory)
        let ids = tokenizer.encode(GGUFTokenizerExport.checkText)
        #expect(
            GGUFTokenizerExport.sha256Hex("[" + ids.map(String.init).joined(separator: ", ") + "]") == reference["check_hash"] as? String)

        let written = Dictionary(export.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(Set(written.keys) == Set(expected.keys))
        for (key, value) in expected {
            switch written[key] {
            case .array(_, let values)?:
                if let strings = value as? [String] {
                    #expect(values.map(\.string) == strings, "\(key)")
                } else {
                    #expect(values.map(\.integer) == (value as? [NSNumber])?.map(\.intValue), "\(key)")
                }
            case .string(let text)?: #expect(value as? String == text, "\(key)")
            case .bool(let flag)?: #expect((value as? NSNumber)?.boolValue == flag, "\(key)")
            case let other?: #expect(other.integer == (value as? NSNumber)?.intValue, "\(key)")
            case nil: Issue.record("\(key) is not written")
            }
        }
    }

    /// A pre-tokenizer llama.cpp has no name for is an error naming it.
    @Test func unknownPreTokenizerIsRefused() throws {
        let source = Self.fixtures.appendingPathComponent("models/qwen2")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for name in ["config.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: directory.appendingPathComponent(name))
        }
        var json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("tokenizer.json"))) as! [String: Any]
        json["pre_tokenizer"] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false]
        try JSONSerialization.data(withJSONObject: json).write(to: directory.appendingPathComponent("tokenizer.json"))
        #expect {
            try GGUFTokenizerExport(directory: directory, vocabularySize: 403)
        } throws: { error in
            (error as? TokenizerError)?.message.contains("pre-tokenizer not recognised") == true
        }
    }
}
