import Foundation
import Synchronization
import XCTest

@testable import Tokenization

/// Ids and decodes equal the `tokenizers` library's on the hostile corpus, for every fixture tokenizer.
final class TokenizerFixtureTests: XCTestCase {
    func testIdsMatchLibraryOnHostileCorpus() throws {
        let corpus = try Fixtures.corpus()
        XCTAssertGreaterThan(corpus.count, 300)
        for name in Fixtures.tokenizerNames {
            let tokenizer = try Tokenizer(contentsOf: Fixtures.directory(name))
            let expected = try Fixtures.expected(name)
            XCTAssertEqual(expected.cases.count, corpus.count)
            var failures = 0
            for (text, want) in zip(corpus, expected.cases) {
                let ids = tokenizer.encode(text)
                let plain = tokenizer.encode(text, addSpecialTokens: false)
                if ids != want.ids || plain != want.ids_no_special {
                    failures += 1
                    if failures <= 5 {
                        XCTFail(
                            "\(name): \"\(visible(text))\"\n got \(ids)\nwant \(want.ids)\n plain got \(plain)\nplain want \(want.ids_no_special)"
                        )
                    }
                }
            }
            XCTAssertEqual(failures, 0, "\(name): \(failures) of \(corpus.count) lines differ")
        }
    }

    func testDecodeMatchesLibrary() throws {
        for name in Fixtures.tokenizerNames {
            let tokenizer = try Tokenizer(contentsOf: Fixtures.directory(name))
            let expected = try Fixtures.expected(name)
            for want in expected.cases {
                XCTAssertEqual(tokenizer.decode(want.ids), want.decoded, "\(name) \(want.ids)")
                XCTAssertEqual(tokenizer.decode(want.ids, skipSpecialTokens: true), want.decoded_skip_special, "\(name) \(want.ids)")
            }
            // Arbitrary ids: characters split between tokens, added tokens, ids past the vocabulary.
            for want in expected.decodes {
                XCTAssertEqual(tokenizer.decode(want.ids), want.decoded, "\(name) \(want.ids)")
                XCTAssertEqual(tokenizer.decode(want.ids, skipSpecialTokens: true), want.decoded_skip_special, "\(name) \(want.ids)")
            }
        }
    }

    func testRoundTripWithoutNormalization() throws {
        // Byte-level BPE is lossless: without NFC, prefix spaces or stripping tokens, decode(encode(x)) == x.
        let corpus = try Fixtures.corpus()
        for name in ["llama3", "gpt2"] {
            let tokenizer = try Tokenizer(contentsOf: Fixtures.directory(name))
            for text in corpus {
                XCTAssertEqual(tokenizer.decode(tokenizer.encode(text, addSpecialTokens: false)), text, "\(name): \(visible(text))")
            }
        }
    }

    func testVocabularyAndSpecialTokens() throws {
        for name in Fixtures.tokenizerNames {
            let tokenizer = try Tokenizer(contentsOf: Fixtures.directory(name))
            let expected = try Fixtures.expected(name)
            XCTAssertEqual(tokenizer.vocabularySize, expected.vocab_size, name)
            XCTAssertEqual(tokenizer.specialTokenIds, Set(expected.added_tokens.filter(\.special).map(\.id)), name)
            for token in expected.added_tokens {
                XCTAssertEqual(tokenizer.id(forToken: token.content), token.id, "\(name) \(token.content)")
                XCTAssertEqual(tokenizer.token(forId: token.id), token.content, name)
            }
        }
        let llama = try Tokenizer(contentsOf: Fixtures.directory("llama3"))
        XCTAssertEqual(llama.bosToken, "<|begin_of_text|>")
        XCTAssertEqual(llama.eosToken, "<|eot_id|>")
        let bos = try XCTUnwrap(llama.id(forToken: "<|begin_of_text|>"))
        XCTAssertEqual(llama.encode("hi").first, bos)
        XCTAssertNotEqual(llama.encode("hi", addSpecialTokens: false).first, bos)
        XCTAssertEqual(llama.tokenBytes(bos), Array("<|begin_of_text|>".utf8))
        // Vocabulary entries are named in byte-level form and stand for raw bytes.
        let space = try XCTUnwrap(llama.id(forToken: "Ġ"))
        XCTAssertEqual(llama.tokenBytes(space), [0x20])
        XCTAssertEqual(llama.token(forId: space), "Ġ")
        XCTAssertNil(llama.id(forToken: "definitely not a token"))
        XCTAssertEqual(llama.tokenBytes(llama.vocabularySize + 5), [])

        let qwen = try Tokenizer(contentsOf: Fixtures.directory("qwen2"))
        XCTAssertNil(qwen.bosToken)
        XCTAssertEqual(qwen.eosToken, "<|im_end|>")
    }

    func testTokenizerJSONFileAlone() throws {
        // A tokenizer.json path reads only that file: same ids, no tokenizer_config.json.
        let file = Fixtures.directory("llama3").appendingPathComponent("tokenizer.json")
        let tokenizer = try Tokenizer(contentsOf: file)
        XCTAssertNil(tokenizer.bosToken)
        XCTAssertNil(tokenizer.chatTemplate)
        let expected = try Fixtures.expected("llama3")
        XCTAssertEqual(tokenizer.encode(try Fixtures.corpus()[0]), expected.cases[0].ids)
    }

    func testConcurrentEncodesAgree() throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.directory("qwen2"))
        let corpus = try Fixtures.corpus()
        let expected = try Fixtures.expected("qwen2")
        let mismatches = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for (i, text) in corpus.enumerated() where i % 4 == worker {
                if tokenizer.encode(text) != expected.cases[i].ids { mismatches.increment() }
            }
        }
        XCTAssertEqual(mismatches.value, 0)
    }
}

final class LockedCounter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
