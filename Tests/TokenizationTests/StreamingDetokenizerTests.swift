import Foundation
import XCTest

@testable import Tokenization

final class StreamingDetokenizerTests: XCTestCase {
    /// Feeds ids one at a time; every chunk must be free of U+FFFD unless the full decode has one there,
    /// and the chunks must add up to `decode`.
    private func stream(
        _ tokenizer: Tokenizer, _ ids: [Int], skipSpecialTokens: Bool = false,
        file: StaticString = #filePath, line: UInt = #line
    ) -> [String] {
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: skipSpecialTokens)
        var chunks = ids.map { detokenizer.push($0) }
        chunks.append(detokenizer.finish())
        let full = tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens)
        XCTAssertEqual(chunks.joined(), full, "\(ids)", file: file, line: line)
        if !full.unicodeScalars.contains("\u{FFFD}") {
            for chunk in chunks {
                XCTAssertFalse(
                    chunk.unicodeScalars.contains("\u{FFFD}"), "chunk \(visible(chunk)) of \(ids) holds half a character", file: file,
                    line: line)
            }
        }
        return chunks
    }

    func testEmojiSplitAcrossTokensIsHeldBack() throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.directory("llama3"))
        // Characters the training corpus never had are spelled byte by byte.
        let text = "astronaut 🧑🏿‍🚀 crab 🦀 hieroglyph 𓀀 music 𝄢 ꙮ, family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 and e\u{301}"
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        // The small vocabulary spells these characters with several byte tokens each.
        let partial = ids.filter { String(validating: tokenizer.tokenBytes($0), as: UTF8.self) == nil }
        XCTAssertGreaterThan(partial.count, 5, "the text must hold tokens that are parts of characters")
        let chunks = stream(tokenizer, ids)
        XCTAssertTrue(chunks.contains(""), "some pushes must wait for the rest of a character")
        XCTAssertEqual(chunks.joined(), text)
    }

    func testWholeCorpusStreamsLikeDecode() throws {
        let corpus = try Fixtures.corpus()
        for name in Fixtures.tokenizerNames {
            let tokenizer = try Tokenizer(contentsOf: Fixtures.directory(name))
            for text in corpus {
                _ = stream(tokenizer, tokenizer.encode(text))
                _ = stream(tokenizer, tokenizer.encode(text), skipSpecialTokens: true)
            }
            // Random ids: broken UTF-8 must come out as the same U+FFFDs as a whole decode gives.
            for want in try Fixtures.expected(name).decodes {
                XCTAssertEqual(stream(tokenizer, want.ids).joined(), want.decoded)
            }
        }
    }

    func testInvalidBytesAreReleasedAndTruncatedCharacterFinishes() throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.directory("gpt2"))
        func byteToken(_ b: UInt8) throws -> Int { try XCTUnwrap(tokenizer.id(forToken: ByteLevel.tokenString(fromBytes: [b]))) }
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        // "€" is E2 82 AC: nothing comes out until the last byte.
        XCTAssertEqual(detokenizer.push(try byteToken(0xE2)), "")
        XCTAssertEqual(detokenizer.push(try byteToken(0x82)), "")
        XCTAssertEqual(detokenizer.push(try byteToken(0xAC)), "€")
        // A continuation byte alone can never become valid: it is released at once.
        XCTAssertEqual(detokenizer.push(try byteToken(0x80)), "\u{FFFD}")
        // E0 needs A0...BF next; E0 80 is invalid at once (two replacement characters, as in decode).
        XCTAssertEqual(detokenizer.push(try byteToken(0xE0)), "")
        XCTAssertEqual(detokenizer.push(try byteToken(0x80)), "\u{FFFD}\u{FFFD}")
        // A character cut short by the end of generation.
        XCTAssertEqual(detokenizer.push(try byteToken(0xF0)), "")
        XCTAssertEqual(detokenizer.push(try byteToken(0x9F)), "")
        XCTAssertEqual(detokenizer.finish(), "\u{FFFD}")
        XCTAssertEqual(detokenizer.finish(), "")
    }

    func testSkipsSpecialTokens() throws {
        let tokenizer = try Tokenizer(contentsOf: Fixtures.directory("qwen2"))
        let ids = tokenizer.encode("<|im_start|>user\nhello<|im_end|>")
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: true)
        let text = ids.map { detokenizer.push($0) }.joined() + detokenizer.finish()
        XCTAssertEqual(text, "user\nhello")
    }
}
