import Foundation
import Testing

@testable import Search

@Suite struct JudgeTemplatesTests {
    /// The test templates with one JSON field replaced (or removed when `value` is nil).
    func variant(_ path: [String], _ value: Any?) throws -> Data {
        var root = try JSONSerialization.jsonObject(with: Data(testTemplatesJSON.utf8)) as! [String: Any]
        func set(_ dict: inout [String: Any], _ path: ArraySlice<String>) {
            if path.count == 1 {
                dict[path.first!] = value
            } else {
                var inner = dict[path.first!] as! [String: Any]
                set(&inner, path.dropFirst())
                dict[path.first!] = inner
            }
        }
        set(&root, path[...])
        return try JSONSerialization.data(withJSONObject: root)
    }

    func loadError(_ data: Data) -> SearchError? {
        do {
            _ = try JudgeTemplates(json: data, source: "my.json")
            return nil
        } catch {
            return error as? SearchError
        }
    }

    @Test func builtInTemplatesAreValid() {
        let t = JudgeTemplates.builtIn
        #expect(t.criterion(for: .reasoning).hints == [.caption])
        #expect(t.criterion(for: .conclusion).hints == [.caption, .reasoning])
        #expect(t.choices == [" 1", " 2"])
        #expect(t.verdictPrefix.hasSuffix("Response"))
        // The fixed final sentence the prompt asks for is one the parser reads.
        let parser = VerdictParser(templates: t)
        #expect(parser.parse("The better response is Response 2.") == .second)
        #expect(parser.parse(t.verdictPrefix + t.choices[0]) == .first)
    }

    @Test func builtInPromptRendersCompletely() {
        let prompt = JudgeTemplates.builtIn.renderPrompt(
            topic: .reasoning, question: "How many cubes?", hints: [.summary: "plan", .caption: "A red cube."],
            first: "One cube.", second: "Two cubes.")
        #expect(prompt.contains("Question: How many cubes?"))
        #expect(prompt.contains("the caption already chosen for this answer:\nA red cube."))
        #expect(!prompt.contains("plan"))
        #expect(prompt.contains("Response 1:\nOne cube.\n\nResponse 2:\nTwo cubes."))
        #expect(Placeholders.names(in: prompt).isEmpty)
    }

    @Test func loadsFromFileAndNamesUnreadableFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("search-templates-\(UUID()).json")
        try Data(testTemplatesJSON.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(try JudgeTemplates(contentsOf: url) == testTemplates)

        let missing = url.appendingPathExtension("nope")
        let error = #expect(throws: SearchError.self) { try JudgeTemplates(contentsOf: missing) }
        #expect(error?.code == .templatesUnreadable)
        #expect(error?.message.contains(missing.path) == true)
    }

    @Test func missingStageIsNamed() throws {
        let error = loadError(try variant(["criteria", "reasoning"], nil))
        #expect(error?.code == .templatesIncomplete)
        #expect(error?.message == "my.json: missing criteria for \"reasoning\"")
    }

    @Test func missingAndUnknownPlaceholdersAreNamed() throws {
        let noCandidate = loadError(try variant(["prompt"], "{question} {criterion} {hints} Response 1 {candidate1} Response 2"))
        #expect(noCandidate?.message == "my.json: \"prompt\" lacks the placeholder {candidate2}")
        let typo = loadError(
            try variant(["prompt"], "{question} {criterion} {hints} Response 1 {candidate1} Response 2 {candidate2} {qestion}"))
        #expect(typo?.code == .templatesIncomplete)
        #expect(typo?.message.contains("unknown placeholder {qestion}") == true)
        let hintWithoutText = loadError(try variant(["hint"], "{stage}"))
        #expect(hintWithoutText?.message == "my.json: \"hint\" lacks the placeholder {text}")
        // Braces that are not placeholders are fine.
        #expect(loadError(try variant(["hint"], "{ {text} } {1} {}")) == nil)
    }

    @Test func otherStructuralErrorsAreNamed() throws {
        #expect(
            loadError(try variant(["labels"], ["Response 1"]))?.message == "my.json: \"labels\" must be two different non-empty strings")
        #expect(
            loadError(try variant(["choices"], [" 1", " 1"]))?.message == "my.json: \"choices\" must be two different non-empty strings")
        #expect(
            loadError(try variant(["labels"], ["Response A", "Response B"]))?.message.contains("never names the label \"Response A\"")
                == true)
        #expect(loadError(try variant(["verdictPrefix"], nil))?.message == "my.json: missing field \"verdictPrefix\"")
        #expect(loadError(try variant(["criteria", "sumary"], ["criterion": "x"]))?.message.contains("unknown topic \"sumary\"") == true)
        #expect(
            loadError(try variant(["criteria", "caption", "hints"], ["reasoning"]))?.message
                == "my.json: criteria.caption.hints: \"reasoning\" is not chosen before caption is judged")
        #expect(loadError(try variant(["criteria", "answer", "hints"], ["caption"]))?.code == .templatesIncomplete)
        #expect(
            loadError(try variant(["criteria", "reasoning", "hints"], ["colour"]))?.message.contains("unknown stage \"colour\"") == true)
        #expect(
            loadError(try variant(["prompt"], "{question} {criterion} Response 1 {candidate1} Response 2 {candidate2}"))?.message
                == "my.json: criteria.reasoning has hints but \"prompt\" has no {hints} placeholder")
        #expect(loadError(try variant(["version"], 2))?.code == .templatesMalformed)
        #expect(loadError(try variant(["prompt"], 5))?.message == "my.json: \"prompt\" should be String")
        #expect(loadError(Data("{ not json".utf8))?.code == .templatesMalformed)
    }

    @Test func renderingIsOnePassAndShowsTheTopicsHints() {
        let prompt = testTemplates.renderPrompt(
            topic: .conclusion, question: "What is {candidate2}?",
            hints: [.summary: "S", .caption: "a cat", .reasoning: "so {question}"],
            first: "it is {candidate2}", second: "B")
        #expect(
            prompt
                == "Q=What is {candidate2}?\n<hint caption>a cat</hint><hint reasoning>so {question}</hint>C=crit-conclusion\n[Response 1]it is {candidate2}[/1]\n[Response 2]B[/2]"
        )
        let summary = testTemplates.renderPrompt(topic: .summary, question: "q", hints: [.caption: "c"], first: "a", second: "b")
        #expect(summary == "Q=q\nC=crit-summary\n[Response 1]a[/1]\n[Response 2]b[/2]")
    }
}
