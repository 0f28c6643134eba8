import ClusterTestSupport
import Foundation
import Testing

@testable import Jobs
@testable import Search

/// Evaluation files: items and judge pairs; a bad line or a missing image stops with the file and line.
struct EvalDatasetTests {
    static let directory = Repo.root.appendingPathComponent("Tests/Fixtures/eval")

    @Test func readsItemsWithImagesRelativeToTheFile() throws {
        let items = try EvalDataset.items(Self.directory.appendingPathComponent("test.jsonl"))
        #expect(items.map(\.id) == ["eval-1", "eval-2"])
        #expect(items[0].image?.standardizedFileURL == JobsFixtures.images.appendingPathComponent("rgb-tiny.png").standardizedFileURL)
        #expect(items[0].answer == "3" && items[0].family == "count")
        #expect(items[1].image == nil && items[1].answer == "Blue" && items[1].family == "color")
    }

    @Test func readsJudgePairs() throws {
        let pairs = try EvalDataset.judgePairs(Self.directory.appendingPathComponent("judge-test.jsonl"))
        #expect(pairs.map(\.id) == ["pair-1", "pair-2"])
        #expect(pairs.map(\.topic) == [.caption, .conclusion])
        #expect(pairs[0].hints == [.summary: "Count the red shapes."] && pairs[1].hints.isEmpty)
        #expect(pairs[0].better.hasPrefix("There are three") && pairs[0].worse == "The image is empty.")
        #expect(pairs[0].image != nil && pairs[1].image == nil)
    }

    /// Writes `lines` to a file and returns the error reading it gives.
    static func error(_ lines: [String], pairs: Bool = false) throws -> (path: String, message: String) {
        let scratch = try Scratch()
        let url = scratch.url.appendingPathComponent("data.jsonl")
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        do {
            if pairs { _ = try EvalDataset.judgePairs(url) } else { _ = try EvalDataset.items(url) }
        } catch let error as JobsError {
            return (url.path, error.message)
        }
        Issue.record("no error for \(lines)")
        return (url.path, "")
    }

    @Test func badLinesNameTheFileAndLine() throws {
        let good = #"{"id": "a", "question": "How many?", "answer": 2}"#
        var (path, message) = try Self.error([good, "", #"{"id": "b", "question": "Which?""#])
        #expect(message == "\(path) line 3: not a JSON object")
        (path, message) = try Self.error([good, #"{"id": "b", "question": "Which?"}"#])
        #expect(message == "\(path) line 2: no \"answer\" (a non-empty string or an integer)")
        (path, message) = try Self.error([good, good])
        #expect(message == "\(path) line 2: duplicate id a (first on line 1)")
        (path, message) = try Self.error([#"{"id": "a", "question": "Q?", "answer": "1", "family": 3}"#])
        #expect(message == "\(path) line 1: \"family\" must be a string")
        (path, message) = try Self.error([#"{"id": "p", "question": "Q?", "topic": "style", "better": "a", "worse": "b"}"#], pairs: true)
        #expect(message.hasPrefix("\(path) line 1: \"topic\" must be one of summary, caption"))
        (path, message) = try Self.error(
            [#"{"id": "p", "question": "Q?", "topic": "caption", "better": "a", "worse": "b", "hints": {"plan": "x"}}"#], pairs: true)
        #expect(message.hasPrefix("\(path) line 1: \"hints\" maps stage names"))
    }

    @Test func aMissingImageIsNamed() throws {
        let (path, message) = try Self.error([#"{"id": "a", "image": "images/nowhere.png", "question": "Q?", "answer": "1"}"#])
        let image = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("images/nowhere.png").path
        #expect(message == "\(path) line 1: image \(image) does not exist or is unreadable")
    }
}
