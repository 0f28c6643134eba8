import ClusterTestSupport
import Foundation
import Testing

/// `stagebeam eval` as users run it, on the tiny random LLaVA: the JSON's shape and that its counts add up
/// (a random model's accuracy is whatever it is).
struct EvalProcessTests {
    static let dataset = EvalDatasetTests.directory.appendingPathComponent("test.jsonl").path
    static let common = [
        "eval", "--model", JobsFixtures.llava, "--chat-template", JobsFixtures.template, "--dataset", dataset,
        "--max-stage-tokens", "4", "--threads", "1", "--seed", "5"
    ]

    @Test func jsonResultsPerMethodFamilyAndJudge() throws {
        let scratch = try Scratch()
        let (status, out, err) = try runStagebeam(
            Self.common + ["--methods", "greedy,stage", "--beam", "2", "--json"],
            in: scratch, name: "eval-json")
        #expect(status == 0, "\(err.suffix(2000))")
        let report = try parseJSON(out)
        #expect(Set(report.keys) == ["results", "by_family", "judge"])

        let results = try #require(report["results"] as? [[String: Any]])
        #expect(results.map { "\($0["method"] ?? "")/\($0["beam"] ?? "")" } == ["greedy/1", "stage/2"])
        for row in results {
            #expect(
                Set(row.keys) == [
                    "method", "beam", "n", "correct", "accuracy", "format_valid", "judge_calls", "tokens", "judge_tokens",
                    "scored_candidates", "seconds", "cpu_seconds"
                ])
            let n = try #require(row["n"] as? Int), correct = try #require(row["correct"] as? Int)
            let beam = try #require(row["beam"] as? Int), tokens = try #require(row["tokens"] as? Int)
            #expect(n == 2 && (0...n).contains(correct))
            #expect(try #require(row["accuracy"] as? Double) == Double(correct) / Double(n))
            #expect((0...1).contains(try #require(row["format_valid"] as? Double)))
            // Each of n items: 4 stages of `beam` candidates, each at most 4 tokens.
            #expect((1...n * 4 * beam * 4).contains(tokens), "\(row)")
            // One match per stage at beam 2, none when both candidates are the same text.
            #expect((0...(beam == 1 ? 0 : n * 4)).contains(try #require(row["judge_calls"] as? Int)), "\(row)")
            #expect(try #require(row["seconds"] as? Double) > 0)
            #expect(try #require(row["cpu_seconds"] as? Double) > 0)
            // Greedy has no judge, so its judge wrote nothing.
            #expect(beam > 1 || row["judge_tokens"] as? Int == 0, "\(row)")
        }

        let families = try #require(report["by_family"] as? [String: [[String: Any]]])
        #expect(families.keys.sorted() == ["color", "count"])
        for (family, cells) in families {
            #expect(cells.map { "\($0["method"] ?? "")/\($0["beam"] ?? "")" } == ["greedy/1", "stage/2"], "\(family)")
            #expect(cells.allSatisfy { $0["n"] as? Int == 1 })
        }
        // Per method, the families add up to the row.
        for (index, row) in results.enumerated() {
            #expect(families.values.map { $0[index]["correct"] as? Int ?? -1 }.reduce(0, +) == row["correct"] as? Int)
        }

        // judge-test.jsonl next to the dataset is found without --judge-pairs.
        let judge = try #require(report["judge"] as? [String: Any])
        #expect(judge["pairs"] as? Int == 2)
        let first = try #require(judge["accuracy_better_first"] as? Double),
            second = try #require(judge["accuracy_better_second"] as? Double)
        #expect([0, 0.5, 1].contains(first) && [0, 0.5, 1].contains(second))
        #expect(judge["accuracy"] as? Double == (first + second) / 2)
        #expect([0, 0.5, 1].contains(try #require(judge["accuracy_both_orders"] as? Double)))
        let topics = try #require(judge["by_topic"] as? [String: [String: Any]])
        #expect(topics.keys.sorted() == ["caption", "conclusion"] && topics.values.allSatisfy { $0["pairs"] as? Int == 1 })
        #expect(err.contains("eval stage · beam 2 · 2 item(s)") && err.contains("eval judge · 2 pair(s)"), "\(err.suffix(1000))")
    }

    /// --answers: one graded line per item and method, agreeing with the table's counts.
    @Test func answersFile() throws {
        let scratch = try Scratch()
        let file = scratch.url.appendingPathComponent("answers.jsonl")
        let (status, out, err) = try runStagebeam(
            Self.common + [
                "--methods", "greedy,stage", "--beam", "2", "--no-judge-pairs",
                "--json", "--answers", file.path
            ],
            in: scratch, name: "eval-answers")
        #expect(status == 0, "\(err.suffix(2000))")
        let results = try #require(try parseJSON(out)["results"] as? [[String: Any]])
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map { try parseJSON(String($0)) }
        #expect(
            lines.map { "\($0["method"] ?? "")/\($0["beam"] ?? "")/\($0["id"] ?? "")" }
                == ["greedy/1/eval-1", "greedy/1/eval-2", "stage/2/eval-1", "stage/2/eval-2"])
        for line in lines {
            #expect(Set(line.keys).isSuperset(of: ["method", "beam", "id", "question", "reference", "correct", "format_valid", "answer"]))
            #expect((line["answer"] as? String)?.hasPrefix("<SUMMARY>") == true, "\(line)")
        }
        for (index, row) in results.enumerated() {
            let correct = lines[(2 * index)..<(2 * index + 2)].filter { $0["correct"] as? Bool == true }.count
            #expect(correct == row["correct"] as? Int)
        }
    }

    /// Tables on stdout, and --no-judge-pairs leaves the judge out.
    @Test func tablesWithoutTheJudge() throws {
        let scratch = try Scratch()
        let (status, out, err) = try runStagebeam(
            Self.common + ["--methods", "greedy", "--no-judge-pairs", "--limit", "1"],
            in: scratch, name: "eval-text")
        #expect(status == 0, "\(err.suffix(2000))")
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.first == "method  beam  n  correct  accuracy  format valid  judge calls  tokens  judge tokens  seconds")
        #expect(lines.contains { $0.hasPrefix("greedy  1     1  ") }, "\(out)")
        #expect(lines.contains { $0.hasPrefix("family  greedy/1") } && !out.contains("judge topic"), "\(out)")
        #expect(!err.contains("eval judge"))
    }
}
