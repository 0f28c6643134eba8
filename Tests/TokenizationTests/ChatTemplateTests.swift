import ChatTemplates
import Foundation
import XCTest

@testable import Tokenization

/// Renderings equal transformers' `apply_chat_template(…, tokenize=False)` (jinja2) for the published
/// templates of Llama 3, 3.1, 3.2, 3.2-Vision, Qwen2, Qwen2.5, Qwen2-VL and a template covering the
/// rest of the supported subset.
final class ChatTemplateTests: XCTestCase {
    struct Renderings: Decodable {
        struct Case: Decodable {
            let template: String
            let conversation: String
            let add_generation_prompt: Bool
            let bos_token: String?
            let eos_token: String?
            let expected: String?
            let error: String?
        }
        let date: String
        let conversations: [String: [ChatMessage]]
        let cases: [Case]
    }

    private func renderings() throws -> Renderings {
        try JSONDecoder().decode(Renderings.self, from: Data(contentsOf: Fixtures.root.appendingPathComponent("chat/renderings.json")))
    }

    private func template(_ name: String) throws -> ChatTemplate {
        try ChatTemplate(contentsOf: Fixtures.root.appendingPathComponent("chat/\(name).jinja"))
    }

    /// Noon on the fixture date: strftime_now reads local time, as Python's datetime.now() does.
    private func fixtureDate(_ day: String) throws -> Date {
        let parts = day.split(separator: "-").map { Int($0)! }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        return try XCTUnwrap(calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2], hour: 12)))
    }

    func testRenderingsMatchTransformers() throws {
        let fixtures = try renderings()
        let date = try fixtureDate(fixtures.date)
        var templates: [String: ChatTemplate] = [:]
        XCTAssertGreaterThan(fixtures.cases.count, 100)
        for c in fixtures.cases {
            let template = try templates[c.template] ?? self.template(c.template)
            templates[c.template] = template
            let messages = try XCTUnwrap(fixtures.conversations[c.conversation])
            let label = "\(c.template)/\(c.conversation) generation prompt: \(c.add_generation_prompt) bos: \(c.bos_token ?? "none")"
            do {
                let text = try template.render(
                    messages: messages, addGenerationPrompt: c.add_generation_prompt,
                    bosToken: c.bos_token, eosToken: c.eos_token, date: date)
                if let expected = c.expected {
                    XCTAssertEqual(text, expected, label)
                } else {
                    XCTFail("\(label): rendered, but jinja2 failed with \(c.error ?? "")")
                }
            } catch let error as ChatTemplateError {
                guard let expectedError = c.error else { return XCTFail("\(label): \(error)") }
                if error.code == .exception {
                    XCTAssertEqual(error.message, expectedError, label) // the template's own words
                } else {
                    XCTAssertEqual(error.code, .runtime, label)
                    XCTAssertTrue(
                        expectedError.contains("undefined") && error.message.contains("undefined"), "\(label): \(error) vs \(expectedError)"
                    )
                }
            }
        }
    }

    func testModelTemplateComesFromTokenizerConfig() throws {
        let fixtures = try renderings()
        let messages = try XCTUnwrap(fixtures.conversations["multi_turn"])
        let llama = try Tokenizer(contentsOf: Fixtures.directory("llama3"))
        let expected = try XCTUnwrap(
            fixtures.cases.first {
                $0.template == "llama3" && $0.conversation == "multi_turn" && $0.add_generation_prompt && $0.bos_token != nil
            }?.expected)
        let text = try XCTUnwrap(llama.chatTemplate).render(
            messages: messages, addGenerationPrompt: true,
            bosToken: llama.bosToken, eosToken: llama.eosToken)
        XCTAssertEqual(text, expected)
        // The rendered prompt starts with exactly one BOS when encoded without adding special tokens.
        let ids = llama.encode(text, addSpecialTokens: false)
        XCTAssertEqual(ids.first, llama.id(forToken: "<|begin_of_text|>"))
        XCTAssertEqual(ids.filter { $0 == llama.id(forToken: "<|begin_of_text|>") }.count, 1)

        // Qwen2's config lists named templates: "default" is used.
        let qwen = try Tokenizer(contentsOf: Fixtures.directory("qwen2"))
        let qwenExpected = try XCTUnwrap(
            fixtures.cases.first {
                $0.template == "qwen2" && $0.conversation == "multi_turn" && !$0.add_generation_prompt && $0.bos_token == nil
            }?.expected)
        XCTAssertEqual(
            try XCTUnwrap(qwen.chatTemplate).render(
                messages: messages, addGenerationPrompt: false,
                bosToken: qwen.bosToken, eosToken: qwen.eosToken), qwenExpected)
        // GPT-2 has none.
        XCTAssertNil(try Tokenizer(contentsOf: Fixtures.directory("gpt2")).chatTemplate)
    }

    func testTemplateFilesInModelDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tokenization-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for file in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(
                at: Fixtures.directory("llama3").appendingPathComponent(file), to: dir.appendingPathComponent(file))
        }
        // chat_template.jinja wins over tokenizer_config.json's chat_template, as in transformers.
        let qwen = try String(contentsOf: Fixtures.root.appendingPathComponent("chat/qwen2.jinja"), encoding: .utf8)
        try qwen.write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try Tokenizer(contentsOf: dir).chatTemplate?.source, qwen)

        // An unsupported template does not stop tokenization: it is reported instead.
        try "{% macro m() %}{% endmacro %}".write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        let tokenizer = try Tokenizer(contentsOf: dir)
        XCTAssertNil(tokenizer.chatTemplate)
        XCTAssertEqual(tokenizer.chatTemplateError?.code, .templateSyntax)
        XCTAssertEqual(tokenizer.encode("hi"), try Tokenizer(contentsOf: Fixtures.directory("llama3")).encode("hi"))
    }

    func testSyntaxErrorsNameThePosition() {
        func assertSyntaxError(_ source: String, _ words: [String], line: UInt = #line) {
            XCTAssertThrowsError(try ChatTemplate(source: source), line: line) { error in
                guard let error = error as? ChatTemplateError else { return XCTFail("\(error)", line: line) }
                XCTAssertEqual(error.code, .syntax, line: line)
                for word in words {
                    XCTAssertTrue(error.message.contains(word), "\"\(error.message)\" lacks \(word)", line: line)
                }
            }
        }
        assertSyntaxError("hello\n  {% macro greet(name) %}hi{% endmacro %}", ["line 2, column 6", "macro"])
        assertSyntaxError("{% for m in messages %}{{ m }}", ["endfor"])
        assertSyntaxError("{{ messages | frobnicate }}", ["line 1, column 13", "filter \"frobnicate\""])
        assertSyntaxError("{% if x is prime %}{% endif %}", ["test \"prime\""])
        assertSyntaxError("{{ 'unterminated }}", ["never closed"])
        assertSyntaxError("{# comment", ["line 1, column 1", "#}"])
        assertSyntaxError("{% include 'other.jinja' %}", ["include"])
        assertSyntaxError("{{ a ? b }}", ["unexpected character \"?\""])
        assertSyntaxError("{% endif %}", ["endif"])
    }

    func testRuntimeErrors() throws {
        func render(_ source: String) throws -> String {
            try ChatTemplate(source: source).render(
                messages: [ChatMessage(role: "user", content: "hi")],
                addGenerationPrompt: false, bosToken: nil, eosToken: nil)
        }
        XCTAssertThrowsError(try render("{{ raise_exception('Roles must alternate') }}")) { error in
            XCTAssertEqual((error as? ChatTemplateError)?.code, .exception)
            XCTAssertEqual((error as? ChatTemplateError)?.message, "Roles must alternate")
        }
        XCTAssertThrowsError(try render("{{ 'a' + 1 }}")) { error in
            XCTAssertEqual((error as? ChatTemplateError)?.code, .runtime)
            XCTAssertTrue("\(error)".contains("line 1, column 8"), "\(error)")
        }
        XCTAssertThrowsError(try render("{{ missing.attribute }}")) { error in
            XCTAssertTrue("\(error)".contains("'missing' is undefined"), "\(error)")
        }
        XCTAssertThrowsError(try render("{% set x = messages.append(1) %}")) { error in
            XCTAssertEqual((error as? ChatTemplateError)?.code, .runtime)
        }
        // Undefined values print as nothing and are falsy, as in jinja2.
        XCTAssertEqual(try render("[{{ nothing }}]{% if nothing %}yes{% else %}no{% endif %}{{ messages[5] is defined }}"), "[]noFalse")
    }
}
