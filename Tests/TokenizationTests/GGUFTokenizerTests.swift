import Foundation
import ModelFormats
import Testing

@testable import Tokenization

/// Tokenizers read from GGUF metadata against their reference (scripts/fixtures/make_gguf_fixtures.py):
/// transformers loading the same file, or for `smollm`, whose split transformers does not apply,
/// the `tokenizers` library with SmolLM's own pre-tokenizer over the same vocabulary.
@Suite struct GGUFTokenizerTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/gguf")

    struct Reference: Decodable {
        let reference: String
        let ids: [[Int]]
        let decoded: [String]
    }

    static let files = ["tokenizer-gpt2.gguf", "tokenizer-default.gguf", "tokenizer-smollm.gguf", "llama-f32.gguf", "qwen2-f16.gguf"]

    @Test(arguments: files)
    func idsMatchTheReferenceOnTheHostileCorpus(file name: String) throws {
        let references = try JSONDecoder().decode(
            [String: Reference].self, from: Data(contentsOf: Self.root.appendingPathComponent("tokenizers.json")))
        let reference = try #require(references[name])
        let corpus = try Fixtures.corpus()
        #expect(reference.ids.count == corpus.count)
        let tokenizer = try Tokenizer(gguf: GGUFFile(url: Self.root.appendingPathComponent(name)))
        var failures = 0, phantom = 0
        for (i, text) in corpus.enumerated() {
            // transformers builds a GGUF byte-level vocabulary as a GPT2Tokenizer, whose default unknown
            // token "<|endoftext|>" it appends as a new id past the file's vocabulary when the file lacks
            // it (the llama fixture): such ids exist neither in the file nor in the model, and llama.cpp
            // reads that text as plain text, as this tokenizer does. Those lines are not compared.
            if reference.ids[i].contains(where: { $0 >= tokenizer.vocabularySize }) {
                phantom += 1
                #expect(text.contains("<|endoftext|>"))
                continue
            }
            let ids = tokenizer.encode(text)
            let decoded = tokenizer.decode(ids)
            if ids != reference.ids[i] || decoded != reference.decoded[i] {
                failures += 1
                if failures <= 3 {
                    Issue.record(
                        "\(name) line \(i) \(text.debugDescription):\n got \(ids) \(decoded.debugDescription)\nwant \(reference.ids[i]) \(reference.decoded[i].debugDescription)"
                    )
                }
            }
        }
        #expect(failures == 0, "\(name): \(failures) of \(corpus.count) lines differ from \(reference.reference)")
        #expect(phantom < corpus.count / 20)
    }

    @Test func specialTokensTemplateAndBOS() throws {
        let llama = try Tokenizer(gguf: GGUFFile(url: Self.root.appendingPathComponent("llama-f32.gguf")))
        let eot = try #require(llama.id(forToken: "<|eot_id|>"))
        #expect(llama.specialTokenIds.contains(eot))
        #expect(llama.bosToken == "<|begin_of_text|>" && llama.eosToken == "<|end_of_text|>")
        #expect(llama.encode("hi").first == llama.id(forToken: "<|begin_of_text|>"))
        #expect(llama.encode("hi", addSpecialTokens: false).first != llama.id(forToken: "<|begin_of_text|>"))
        #expect(llama.encode("a<|eot_id|>b", addSpecialTokens: false).contains(eot))
        #expect(llama.chatTemplate?.source.contains("<|start_header_id|>") == true)
        let qwen = try Tokenizer(gguf: GGUFFile(url: Self.root.appendingPathComponent("qwen2-f16.gguf")))
        #expect(qwen.bosToken == "<|endoftext|>" && qwen.eosToken == "<|im_end|>")
        #expect(qwen.encode("hi") == qwen.encode("hi", addSpecialTokens: false))
        #expect(qwen.chatTemplate?.source.contains("<|im_start|>") == true)
    }

    /// A copy of a fixture with the string value of `key` overwritten by `replacement` (same length).
    static func patched(_ name: String, key: String, to replacement: String) throws -> URL {
        var data = try Data(contentsOf: root.appendingPathComponent(name))
        let keyBytes = Data(key.utf8)
        let range = try #require(data.range(of: keyBytes))
        // key, then the value's type (u32) and length (u64), then its bytes.
        let start = range.upperBound + 12
        data.replaceSubrange(start..<start + replacement.utf8.count, with: Data(replacement.utf8))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-\(UUID().uuidString).gguf")
        try data.write(to: url)
        return url
    }

    @Test func unknownModelOrPreTokenizerIsNamed() throws {
        let pre = try Self.patched("tokenizer-gpt2.gguf", key: "tokenizer.ggml.pre", to: "gpx2")
        defer { try? FileManager.default.removeItem(at: pre) }
        #expect {
            try Tokenizer(gguf: GGUFFile(url: pre))
        } throws: { error in
            let message = "\(error)"
            return message.contains("'gpx2'") && message.contains("llama-bpe") && (error as? TokenizerError)?.code == .unsupportedComponent
        }
        let model = try Self.patched("tokenizer-gpt2.gguf", key: "tokenizer.ggml.model", to: "bert")
        defer { try? FileManager.default.removeItem(at: model) }
        #expect {
            try Tokenizer(gguf: GGUFFile(url: model))
        } throws: { "\($0)".contains("'bert'") }
    }
}
