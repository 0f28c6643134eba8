import Foundation
import XCTest

@testable import Tokenization

/// Bad tokenizer files are clear errors naming the problem, never a silent fallback.
final class TokenizerErrorTests: XCTestCase {
    private func assertError(
        _ code: TokenizerError.Code, mentioning words: [String], _ body: () throws -> Any,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let error = error as? TokenizerError else { return XCTFail("not a TokenizerError: \(error)", file: file, line: line) }
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            for word in words {
                XCTAssertTrue(error.message.contains(word), "\"\(error.message)\" does not mention \(word)", file: file, line: line)
            }
        }
    }

    func testUnknownSplitPattern() {
        assertError(.unsupportedComponent, mentioning: ["Split regex", "\\p{L}+"]) {
            try Fixtures.tokenizer(editing: "llama3") { json in
                var pre = json["pre_tokenizer"] as! [String: Any]
                var steps = pre["pretokenizers"] as! [[String: Any]]
                steps[0]["pattern"] = ["Regex": #"\p{L}+|\p{N}+|\s+"#]
                pre["pretokenizers"] = steps
                json["pre_tokenizer"] = pre
            }
        }
    }

    func testUnknownComponents() {
        assertError(.unsupportedComponent, mentioning: ["WordPiece"]) {
            try Fixtures.tokenizer(editing: "gpt2") { json in
                var model = json["model"] as! [String: Any]
                model["type"] = "WordPiece"
                json["model"] = model
            }
        }
        assertError(.unsupportedComponent, mentioning: ["Metaspace"]) {
            try Fixtures.tokenizer(editing: "gpt2") { $0["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"] }
        }
        assertError(.unsupportedComponent, mentioning: ["Lowercase"]) {
            try Fixtures.tokenizer(editing: "qwen2") { $0["normalizer"] = ["type": "Lowercase"] }
        }
        assertError(.unsupportedComponent, mentioning: ["RobertaProcessing"]) {
            try Fixtures.tokenizer(editing: "gpt2") { $0["post_processor"] = ["type": "RobertaProcessing"] }
        }
        assertError(.unsupportedComponent, mentioning: ["WordPiece"]) {
            try Fixtures.tokenizer(editing: "gpt2") { $0["decoder"] = ["type": "WordPiece"] }
        }
        assertError(.unsupportedComponent, mentioning: ["byte_fallback"]) {
            try Fixtures.tokenizer(editing: "gpt2") { json in
                var model = json["model"] as! [String: Any]
                model["byte_fallback"] = true
                json["model"] = model
            }
        }
        assertError(.unsupportedComponent, mentioning: ["Removed"]) {
            try Fixtures.tokenizer(editing: "qwen2") { json in
                var pre = json["pre_tokenizer"] as! [String: Any]
                var steps = pre["pretokenizers"] as! [[String: Any]]
                steps[0]["behavior"] = "Removed"
                pre["pretokenizers"] = steps
                json["pre_tokenizer"] = pre
            }
        }
    }

    func testInconsistentMerges() {
        assertError(.inconsistentVocabulary, mentioning: ["merge #0"]) {
            try Fixtures.tokenizer(editing: "gpt2") { json in
                var model = json["model"] as! [String: Any]
                var merges = model["merges"] as! [Any]
                merges[0] = ["nope", "missing"]
                model["merges"] = merges
                json["model"] = model
            }
        }
        assertError(.malformedJSON, mentioning: ["merge #1"]) {
            try Fixtures.tokenizer(editing: "legacy") { json in
                var model = json["model"] as! [String: Any]
                var merges = model["merges"] as! [Any]
                merges[1] = "a b c"
                model["merges"] = merges
                json["model"] = model
            }
        }
    }

    func testVocabularyEntryOutsideByteAlphabetIsDecodableButNeverEncoded() throws {
        let plain = try Tokenizer(contentsOf: Fixtures.directory("gpt2"))
        let edited = try Fixtures.tokenizer(editing: "gpt2") { json in
            var model = json["model"] as! [String: Any]
            var vocab = model["vocab"] as! [String: Any]
            vocab["hello world"] = 9000
            model["vocab"] = vocab
            json["model"] = model
        }
        XCTAssertEqual(edited.decode([9000]), "hello world")
        XCTAssertEqual(edited.encode("hello world"), plain.encode("hello world"))
        XCTAssertEqual(edited.vocabularySize, 9001)
    }

    func testMalformedJSON() throws {
        let data = try Data(contentsOf: Fixtures.directory("gpt2").appendingPathComponent("tokenizer.json"))
        assertError(.malformedJSON, mentioning: ["tokenizer.json", "not valid JSON"]) {
            try Tokenizer(tokenizerJSON: data.prefix(data.count / 2))
        }
        assertError(.malformedJSON, mentioning: ["top level"]) { try Tokenizer(tokenizerJSON: Data("[1, 2]".utf8)) }
        assertError(.malformedJSON, mentioning: ["model", "object"]) { try Tokenizer(tokenizerJSON: Data(#"{"model": 3}"#.utf8)) }
        assertError(.malformedJSON, mentioning: ["vocab"]) {
            try Fixtures.tokenizer(editing: "gpt2") { json in
                var model = json["model"] as! [String: Any]
                model["vocab"] = ["a": "zero"]
                json["model"] = model
            }
        }
    }

    func testMissingFiles() {
        let nowhere = Fixtures.root.appendingPathComponent("no-such-model")
        assertError(.unreadableFile, mentioning: ["no-such-model"]) { try Tokenizer(contentsOf: nowhere) }
        assertError(.unreadableFile, mentioning: ["no tokenizer.json"]) {
            try Tokenizer(contentsOf: Fixtures.root.appendingPathComponent("chat"))
        }
    }
}
