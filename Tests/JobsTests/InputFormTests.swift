import ClusterTestSupport
import Foundation
import Testing
import Wire

@testable import Jobs

/// The three input forms, and malformed lines reported by number without stopping the batch.
struct InputFormTests {
    @Test func jsonLinesItemsAndMalformedLines() throws {
        let input = try BatchInput.read(JobsFixtures.url("text.jsonl"))
        #expect(input.format == .jsonLines)
        #expect(input.items.map(\.id) == ["q1", "q2", "q3", "4", "q5", "q6"])
        #expect(input.items[0].question == "How many legs does a spider have?" && input.items[0].image == nil)
        #expect(input.items.map(\.line) == [1, 2, 4, 6, 10, 11])
        #expect(input.problems.map(\.line) == [3, 5, 8, 9])
        #expect(input.problems[0].reason == "not valid JSON")
        #expect(input.problems[1].reason.contains("no \"question\""))
        #expect(input.problems[2].reason == "duplicate id 'q1' (first on line 1)")
        #expect(input.problems[3].reason.contains("<image> marker but the record names no image"))
    }

    @Test func llavaCoTRecordsTakeTheFirstHumanTurnWithoutTheImageMarker() throws {
        let input = try BatchInput.read(JobsFixtures.url("llava-cot.jsonl"), imagesDirectory: JobsFixtures.images)
        #expect(input.items.map(\.id) == ["cot-1", "cot-2", "cot-3"])
        #expect(input.items.map(\.question) == ["What colour dominates the picture?", "Is this image in colour?", "Describe the scene."])
        #expect(input.items[0].image == .file(JobsFixtures.images.appendingPathComponent("rgb-tiny.png")))
        #expect(input.problems.count == 1 && input.problems[0].line == 4)
        #expect(input.problems[0].reason.contains("no-such-image.png does not exist"))
    }

    @Test func jsonArrayOfRecords() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("records.json")
        try Data(#"[{"id": 1, "question": "One?"}, {"id": "two", "conversations": [{"from": "gpt", "value": "x"}]}, 5]"#.utf8).write(
            to: url)
        let input = try BatchInput.read(url)
        #expect(input.format == .jsonArray)
        #expect(input.items.map(\.id) == ["1"])
        #expect(input.problems.map(\.line) == [2, 3])
        #expect(input.problems[1].reason == "not a JSON object")
    }

    /// The TSV as pandas wrote it, against the prompts VLMEvalKit's build_prompt made of it.
    @Test func vlmEvalKitTSVBecomesVLMEvalKitsPrompts() throws {
        let input = try BatchInput.read(JobsFixtures.url("mcq.tsv"))
        let expected = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: JobsFixtures.url("mcq-expected.json"))) as? [String: [String: String]])
        #expect(input.format == .tsv)
        #expect(input.items.map(\.id) == ["0", "1", "2", "3"])
        for item in input.items {
            let reference = try #require(expected[item.id])
            #expect(item.question == reference["prompt"])
            #expect(item.reference == reference["answer"])
            guard case .bytes(let image) = item.image else { throw ChildProcessError("item \(item.id) has no image bytes") }
            #expect(ContentHash.sha256Hex(image) == reference["image_sha256"])
        }
        // Row 3's quoted fields span lines 5–7 of the file; the broken row starts on line 8.
        #expect(input.items.map(\.line) == [2, 3, 4, 5])
        #expect(input.problems == [InputProblem(line: 8, reason: "image is not valid base64")])
    }

    @Test func tsvWithoutRequiredColumnsIsOneProblem() throws {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("bad.tsv")
        try Data("index\tquestion\n1\tWhat?\n".utf8).write(to: url)
        let input = try BatchInput.read(url)
        #expect(input.items.isEmpty)
        #expect(input.problems.count == 1 && input.problems[0].reason.contains("lacks column(s) image"))
    }

    @Test func unreadableInputIsAnError() throws {
        #expect(throws: JobsError.self) { try BatchInput.read(URL(fileURLWithPath: "/nonexistent/input.jsonl")) }
    }
}

/// Item seeds against an independent implementation of the documented formula (the fixture script's).
struct ItemSeedTests {
    @Test func seedsMatchTheDocumentedFormula() throws {
        let data = try Data(contentsOf: JobsFixtures.url("item-seeds.json"))
        let vectors = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        #expect(vectors.count == 6)
        for vector in vectors {
            let batch = try #require((vector["batch"] as? NSNumber)?.uint64Value)
            let seed = try #require((vector["seed"] as? NSNumber)?.uint64Value)
            #expect(ItemSeed.seed(batch: batch, id: vector["id"] as! String) == seed, "\(vector)")
        }
    }
}
