import ClusterTestSupport
import Foundation
import Testing

/// `stagebeam batch` as users run it: real processes, real checkpoints, SIGKILLed at random moments.
@Suite(.serialized) struct BatchProcessTests {
    static let textModel = Repo.model("llama-gqa")

    /// What must not depend on interruptions or where an item ran: per id, its seed, answer and the
    /// chosen text of every stage.
    static func answers(_ path: String) throws -> [String: String] {
        var answers: [String: String] = [:]
        for line in try outputLines(path) {
            let id = try #require(line["id"] as? String)
            let stages = (line["stages"] as? [[String: Any]] ?? []).map { "\($0["stage"] ?? "")=\($0["text"] ?? "")" }
            #expect(answers[id] == nil, "id \(id) appears twice in \(path)")
            answers[id] = "\(line["status"] ?? "")|\(line["seed"] ?? "")|\(line["answer"] ?? "")|\(stages.joined(separator: "|"))"
        }
        return answers
    }

    /// Killed with SIGKILL at random moments and run again until done, a batch's output holds each
    /// id exactly once, every line whole, and the same answers as an uninterrupted run.
    @Test func resumeAfterSIGKILLAtRandomMomentsEqualsAnUninterruptedRun() throws {
        let scratch = try Scratch()
        let input = scratch.path("items.jsonl")
        let ids = (0..<24).map { "item-\($0)" }
        try ids.enumerated().map { i, id in #"{"id": "\#(id)", "question": "Question \#(i): what is \#(i) plus \#(i * 3)?"}"# }
            .joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let arguments = [
            "batch", "--model", Self.textModel, "--input", input, "--beam", "3", "--max-stage-tokens", "12",
            "--seed", "9", "--threads", "1", "--concurrency", "2", "--progress-interval-s", "0.2"
        ]

        let reference = scratch.path("reference.jsonl")
        let started = Date()
        let (status, _, err) = try runStagebeam(arguments + ["--output", reference], in: scratch, name: "batch-reference")
        // Kills land at a random moment within the first third of a whole run's time after the
        // batch has started (its first line), so each run gets somewhere and the kills fall at
        // different points: before any line, between lines, mid-item.
        let window = Date().timeIntervalSince(started) / 3
        #expect(status == 0, "\(err.suffix(2000))")
        #expect(err.contains("24 run now (0 failed)"), "\(err.suffix(500))")
        let expected = try Self.answers(reference)
        #expect(expected.keys.sorted() == ids.sorted())

        let resumed = scratch.path("resumed.jsonl")
        var kills = 0
        var linesAfterKills: [Int] = []
        for attempt in 0..<12 {
            let child = try ChildProcess(arguments + ["--output", resumed], name: "batch-\(attempt)", in: scratch)
            try child.wait("the batch to start") { $0.stderr.contains("batch: ") ? true : nil }
            usleep(UInt32(Double.random(in: 0...window) * 1e6))
            guard child.process.isRunning else {
                #expect(try child.exitStatus() == 0, "\(child.stderr.suffix(2000))")
                break
            }
            child.signal(SIGKILL)
            _ = try child.exitStatus()
            kills += 1
            // After each kill: every line is whole (an object) and no id repeats.
            let partial = try Self.answers(resumed)
            linesAfterKills.append(partial.count)
            for (id, answer) in partial { #expect(expected[id] == answer, "item \(id) after kill \(kills)") }
        }
        let (finalStatus, _, finalErr) = try runStagebeam(arguments + ["--output", resumed], in: scratch, name: "batch-final")
        #expect(finalStatus == 0, "\(finalErr.suffix(2000))")
        #expect(kills >= 3, "the batch finished before it could be killed 3 times: \(linesAfterKills)")
        #expect(Set(linesAfterKills).count > 1, "kills landed at different points: \(linesAfterKills)")
        #expect(try Self.answers(resumed) == expected)
        print("batch resume: \(kills) SIGKILLs; lines in the output after each: \(linesAfterKills)")
    }

    /// Items that failed are kept (with their error) until `--retry-failed`, which runs just those
    /// again; succeeded lines are left as they were.
    @Test func retryFailedRunsOnlyTheFailedItemsAgain() throws {
        let scratch = try Scratch()
        let input = scratch.path("items.jsonl")
        let image = JobsFixtures.images.appendingPathComponent("rgb-tiny.png").path
        try [
            #"{"id": "text", "question": "What is one plus one?"}"#,
            #"{"id": "picture", "image": "\#(image)", "question": "What is shown?"}"#
        ]
        .joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let output = scratch.path("out.jsonl")
        // A text-only model cannot take the image: that item fails, with its reason, and the batch goes on.
        let arguments = [
            "batch", "--model", Self.textModel, "--input", input, "--output", output, "--beam", "2",
            "--max-stage-tokens", "6", "--threads", "1"
        ]
        let (status, _, err) = try runStagebeam(arguments, in: scratch, name: "batch-1")
        #expect(status == 0, "\(err.suffix(2000))")
        #expect(err.contains("2 run now (1 failed)"), "\(err.suffix(500))")
        let first = try outputLines(output)
        let failed = try #require(first.first { $0["id"] as? String == "picture" })
        #expect(failed["status"] as? String == "failed")
        let error = failed["error"] as? [String: Any]
        #expect((error?["message"] as? String)?.isEmpty == false, "\(failed)")
        let textLine = try #require(
            String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").first { $0.contains(#""id":"text""#) })

        // A plain rerun has nothing to do.
        let (_, _, again) = try runStagebeam(arguments, in: scratch, name: "batch-2")
        #expect(again.contains("2 already done, 0 run now"), "\(again.suffix(500))")
        // --retry-failed runs the failed item again (it fails again here) and keeps the other line.
        let (_, _, retried) = try runStagebeam(arguments + ["--retry-failed"], in: scratch, name: "batch-3")
        #expect(
            retried.contains("removing 1 failed item(s)") && retried.contains("1 already done, 1 run now (1 failed)"),
            "\(retried.suffix(800))")
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first == textLine)
    }

    /// LLaVA-CoT records and a VLMEvalKit TSV with images, in process and on a cluster of two LLaVA
    /// workers: the same answers, and the full search record with --record-search.
    @Test func imageItemsInProcessAndOnAClusterGiveTheSameAnswers() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        for id in ["a", "b"] {
            try cluster.addWorker(
                id, maxBatch: 2, model: JobsFixtures.llava, extra: ["--chat-template", JobsFixtures.template, "--threads", "1"])
        }
        for (input, count) in [("llava-cot.jsonl", 3), ("mcq.tsv", 4)] {
            let common = [
                "batch", "--input", JobsFixtures.url(input).path, "--images-dir", JobsFixtures.images.path, "--beam", "2",
                "--max-stage-tokens", "6", "--seed", "4", "--record-search"
            ]
            let local = scratch.path("local-\(input).jsonl")
            let (status, _, err) = try runStagebeam(
                common + [
                    "--model", JobsFixtures.llava, "--chat-template", JobsFixtures.template,
                    "--threads", "1", "--output", local
                ], in: scratch, name: "batch-local-\(input)")
            // Each input has one line that is not an item: it is reported, and the exit status says so.
            #expect(status == 4, "\(err.suffix(2000))")
            #expect(err.contains("\(count) run now (0 failed)") && err.contains("1 input line(s) skipped"), "\(err.suffix(800))")
            let remote = scratch.path("cluster-\(input).jsonl")
            let (clusterStatus, _, clusterErr) = try runStagebeam(
                common + ["--coordinator", cluster.endpoint, "--concurrency", "3", "--output", remote],
                in: scratch, name: "batch-cluster-\(input)")
            #expect(clusterStatus == 4, "\(clusterErr.suffix(2000))")
            let answers = try Self.answers(local)
            #expect(answers.count == count)
            #expect(try Self.answers(remote) == answers)
            for line in try outputLines(remote) {
                let record = try #require(line["search"] as? [String: Any], "no search record in \(line.keys.sorted())")
                #expect(try SearchOutcome(record: record).stages.count == 4)
                #expect((line["job_id"] as? String)?.hasPrefix("batch-") == true)
                if input == "mcq.tsv" { #expect(line["reference"] as? String != nil) }
            }
        }
    }

    /// On a coordinator, a killed batch's rerun submits the same job ids (a hash of each job): the
    /// coordinator answers the jobs it finished from its table, and the output still has each id
    /// once, with the answers of an in-process run.
    @Test func clusterBatchResumesAfterSIGKILL() throws {
        let scratch = try Scratch()
        let input = scratch.path("items.jsonl")
        try (0..<12).map { #"{"id": "c\#($0)", "question": "Cluster question \#($0)?"}"# }
            .joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let common = ["batch", "--input", input, "--beam", "2", "--max-stage-tokens", "10", "--seed", "3"]
        let local = scratch.path("local.jsonl")
        let (status, _, err) = try runStagebeam(
            common + ["--model", Self.textModel, "--threads", "1", "--output", local], in: scratch, name: "batch-local")
        #expect(status == 0, "\(err.suffix(2000))")

        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("a", maxBatch: 2, extra: ["--threads", "1"])
        let remote = scratch.path("remote.jsonl")
        let arguments = common + ["--coordinator", cluster.endpoint, "--concurrency", "2", "--output", remote]
        let child = try ChildProcess(arguments, name: "batch-killed", in: scratch)
        try child.wait("a first result line") { _ in
            ((try? String(contentsOfFile: remote, encoding: .utf8)) ?? "").contains("\n") ? true : nil
        }
        child.signal(SIGKILL)
        _ = try child.exitStatus()
        let before = try Self.answers(remote).count
        let (again, _, againErr) = try runStagebeam(arguments, in: scratch, name: "batch-rerun")
        #expect(again == 0, "\(againErr.suffix(2000))")
        #expect(againErr.contains("\(before) already done, \(12 - before) run now (0 failed)"), "\(againErr.suffix(500))")
        #expect(try Self.answers(remote) == Self.answers(local))
        #expect(before < 12, "killed before the end")
        // Each job was accepted (and computed) once: the rerun re-attached to those it had sent.
        #expect(cluster.coordinator.logged("job accepted").count == 12, "\(cluster.coordinator.stderr.suffix(3000))")
    }

    /// A coordinator that never answers: the batch says so after its connect timeout and exits
    /// non-zero, instead of waiting for ever or failing every item.
    @Test func batchSaysSoWhenNoCoordinatorAnswers() throws {
        let scratch = try Scratch()
        let output = scratch.path("out.jsonl")
        let started = Date()
        // Nothing listens on port 9 (discard) on loopback: the link retries connecting, no answer comes.
        let (status, _, err) = try runStagebeam(
            [
                "batch", "--coordinator", "tcp://127.0.0.1:9", "--input", JobsFixtures.url("text.jsonl").path, "--output", output,
                "--concurrency", "6", "--connect-timeout-s", "0.5"
            ], in: scratch, name: "batch-timeout")
        #expect(status != 0 && err.contains("no answer from tcp://127.0.0.1:9 within 0.5 s"), "\(err.suffix(1000))")
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").isEmpty, "no item was run")
    }

    /// Input lines that are not items are listed, the others are run, and the exit status is 4:
    /// those lines are in no output line, so the run is not complete.
    @Test func skippedInputLinesMakeTheExitStatusNonZero() throws {
        let scratch = try Scratch()
        let input = scratch.path("items.jsonl")
        try "{\"id\": \"a\", \"question\": \"Why is the sky blue?\"}\nnot json at all\n".write(
            toFile: input, atomically: true, encoding: .utf8)
        let output = scratch.path("out.jsonl")
        let (status, _, err) = try runStagebeam(
            [
                "batch", "--model", Self.textModel, "--threads", "1", "--input", input, "--output", output, "--method", "greedy",
                "--max-stage-tokens", "4"
            ], in: scratch, name: "batch-skipped")
        #expect(status == 4, "\(err.suffix(1000))")
        #expect(err.contains("1 input line(s) of \(input) skipped"), "\(err.suffix(1000))")
        #expect(try outputLines(output).count == 1)
    }
}
