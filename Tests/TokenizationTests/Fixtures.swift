import Foundation
import XCTest

@testable import Tokenization

/// Fixtures written by scripts/fixtures/make_tokenizer_fixtures.py from the Hugging Face libraries.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers")

    static let tokenizerNames = ["llama3", "gpt2", "qwen2", "legacy"]

    static func directory(_ name: String) -> URL { root.appendingPathComponent(name) }

    static func corpus() throws -> [String] {
        try JSONDecoder().decode([String].self, from: Data(contentsOf: root.appendingPathComponent("corpus.json")))
    }

    struct Expected: Decodable {
        struct Case: Decodable {
            let ids: [Int]
            let ids_no_special: [Int]
            let decoded: String
            let decoded_skip_special: String
        }
        struct Decode: Decodable {
            let ids: [Int]
            let decoded: String
            let decoded_skip_special: String
        }
        struct Added: Decodable {
            let id: Int
            let content: String
            let special: Bool
        }
        let vocab_size: Int
        let cases: [Case]
        let decodes: [Decode]
        let added_tokens: [Added]
    }

    static func expected(_ name: String) throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: directory(name).appendingPathComponent("expected.json")))
    }

    static func tokenizerJSON(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory(name).appendingPathComponent("tokenizer.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// A tokenizer from tokenizer.json after `edit` (for the error tests).
    static func tokenizer(editing name: String, _ edit: (inout [String: Any]) -> Void) throws -> Tokenizer {
        var json = try tokenizerJSON(name)
        edit(&json)
        return try Tokenizer(tokenizerJSON: JSONSerialization.data(withJSONObject: json))
    }
}

/// Shows strings with their invisible characters, for failure messages.
func visible(_ s: String) -> String {
    s.unicodeScalars.map {
        $0.value < 0x20 || $0.value == 0x7F || ($0.value >= 0x80 && $0.value < 0xA0) ? "\\u{\(String($0.value, radix: 16))}" : String($0)
    }.joined()
}
