import ArgumentParser
import Cluster
import Foundation
import Jobs
import LocalEngine
import Search
import Transport

/// Accuracy of search methods on a held-out set, and of the judge on held-out pairs, in this process.
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score search methods (and the judge) on a held-out dataset with the model in this process.",
        discussion: """
            Runs every item with every method at every beam (greedy once, at beam 1) and prints a table like \
            the LLaVA-CoT paper's, accuracy per question family and, with judge pairs, the judge's accuracy \
            with the better text shown first and second. Dataset lines: {"id", "question", "answer", "image"?, \
            "family"?}, images relative to the file. An answer is correct when the last word of its CONCLUSION \
            equals the reference (see Grading). Each item's seed derives from --seed and its id.
            """)

    @OptionGroup var engine: EngineOptions
    @Option(help: "Dataset JSONL (default: the built-in datasets/shapes/test.jsonl, here or above the executable).")
    var dataset: String?
    @Option(help: "Methods to compare, comma-separated: greedy, best-of-n, sentence, stage, stage-beam, swires.")
    var methods = "greedy,best-of-n,sentence,stage"
    @Option(
        help:
            "Beam sizes, comma-separated; greedy always runs at 1; for stage-beam and swires, the candidates per stage M (\(searchDefaultsNote) \(SearchConfig().beam), and M \(SearchConfig().candidates))."
    )
    var beam: String?
    @OptionGroup var tuning: SearchTuningOptions
    @OptionGroup var scoring: ScorerOptions
    @Option(help: "Only the first K items (and the first K judge pairs).")
    var limit: Int?
    @Option(name: .customLong("judge-pairs"), help: "Judge pairs JSONL (default: judge-test.jsonl next to the dataset, if there).")
    var judgePairs: String?
    @Flag(name: .customLong("no-judge-pairs"), help: "Do not evaluate the judge.")
    var noJudgePairs = false
    @Flag(help: "Print {\"results\", \"by_family\", \"judge\"} as JSON instead of tables.")
    var json = false
    @Option(help: ArgumentHelp("Also write every item's graded answer, per method and beam, as JSON lines to FILE.", valueName: "FILE"))
    var answers: String?
    @Option(name: .customLong("progress-interval-s"), help: "Seconds between progress lines when standard error is not a terminal.")
    var progressIntervalS = 10.0
    @Flag(
        help: """
            Also print where each row's time went, per stage: candidate prefill and decode, judge prefill and decode, \
            time calls waited, and prompt tokens reused from the prefix cache (milliseconds per item).
            """)
    var profile = false
    @Option(
        help: ArgumentHelp(
            "Run the items as jobs on the coordinator at ENDPOINT instead of in this process (--model still gives the recommendations; no judge pairs).",
            valueName: "ENDPOINT"))
    var coordinator: String?
    @OptionGroup var connect: ConnectOptions
    @Flag(
        name: .customLong("judge-one-at-a-time"),
        help:
            "In process: send a bracket round's comparisons to the engine one by one instead of as one batch (to measure what batching saves)."
    )
    var judgeOneAtATime = false

    func validate() throws {
        _ = try methodList()
        _ = try beamList(recommended: 1)
        if let limit, limit < 1 { throw ValidationError("--limit must be ≥ 1") }
        if judgePairs != nil, noJudgePairs { throw ValidationError("give --judge-pairs or --no-judge-pairs, not both") }
        if !(progressIntervalS > 0) { throw ValidationError("--progress-interval-s must be > 0") }
    }

    func methodList() throws -> [SearchMethod] {
        try list(methods, "--methods") { SearchMethod(rawValue: $0) }
    }

    /// --beam's list, else the one `recommended` beam.
    func beamList(recommended: Int) throws -> [Int] {
        guard let beam else { return [recommended] }
        return try list(beam, "--beam") { Int($0).flatMap { (1...SearchConfig.maxBeam).contains($0) ? $0 : nil } }
    }

    private func list<T>(_ text: String, _ option: String, _ parse: (String) -> T?) throws -> [T] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap(parse)
        guard !values.isEmpty, values.count == parts.count else { throw ValidationError("\(option): cannot read '\(text)'") }
        return values
    }

    func run() async throws {
        let datasetURL = try dataset.map { URL(fileURLWithPath: $0) } ?? BuiltInModel.current.dataset()
        let items = Array(try EvalDataset.items(datasetURL).prefix(limit ?? .max))
        guard !items.isEmpty else { throw ValidationError("\(datasetURL.path) has no items") }
        let pairs = try judgePairsURL(next: datasetURL).map { Array(try EvalDataset.judgePairs($0).prefix(limit ?? .max)) }

        let methods = try methodList()
        let scored = methods.contains(where: \.usesScorer)
        // Each row runs its method with the settings the model recommends for it (its own beam).
        let recommendations = try ModelRecommendations(model: engine.directory)
        func methodConfig(_ method: SearchMethod?) -> SearchConfig {
            var choices = tuning.choices
            choices.method = method
            return recommendations.config(choices: choices, seed: tuning.seed, scorer: scoring.scorerName)
        }
        let config = methodConfig(nil)
        let search: (EvalItem, SearchConfig) async throws -> SearchResult
        var evaluator: Evaluator?
        if let coordinator {
            try await connect.check(coordinator, curve: nil)
            let client = try Client(context: ZMQContext(), endpoint: coordinator)
            let searches = ClusterSearches(
                client: client, judgeTemplatesJSON: try tuning.judgeTemplates.map { try Data(contentsOf: URL(fileURLWithPath: $0)) })
            search = { try await searches.search($0, config: $1) }
        } else {
            let images = ImageStore()
            let local = try engine.makeLocalEngine(images: images, keepCandidates: scored && scoring.rewardModel == nil)
            let judge: any Judge = judgeOneAtATime ? OneComparisonAtATime(inner: local.judge) : local.judge
            let inProcess = Evaluator(
                generator: local.generator, judge: judge, images: images, templates: try tuning.templates(),
                scorer: scored ? try engine.makeScorer(scoring, selfReward: local.scorer) : nil, rewardTemplates: try scoring.templates())
            evaluator = inProcess
            search = { try await inProcess.search($0, config: $1) }
        }
        var rows: [EvalRow] = []
        let plan =
            beam == nil
            ? methods.flatMap { method in
                let recommended = methodConfig(method)
                return EvalRun.plan(methods: [method], beams: [method.usesScorer ? recommended.candidates : recommended.beam])
            }
            : EvalRun.plan(methods: methods, beams: try beamList(recommended: config.beam))
        for run in plan {
            printError("eval \(run.method.rawValue) · beam \(run.beam) · \(items.count) item(s) from \(datasetURL.path)")
            let progress = makeProgress(items.count)
            let cpuBefore = processCPUSeconds()
            var row = try await Evaluator.evaluate(items, run: run, config: methodConfig(run.method), progress: progress, search: search)
            // In this process, the row's CPU time measures its compute even on a shared machine;
            // a cluster's compute is on its workers.
            if coordinator == nil { row.cpuSeconds = processCPUSeconds() - cpuBefore }
            progress.end()
            printError(
                String(
                    format: "  %d/%d correct · %d format valid · %d judge calls · %d tokens · %.1f s",
                    row.score.correct, row.score.n, row.formatValid, row.judgeCalls, row.tokens, row.seconds))
            rows.append(row)
        }
        var judge: JudgeAccuracy?
        if let pairs, !pairs.isEmpty, let evaluator {
            printError("eval judge · \(pairs.count) pair(s), each asked in both orders")
            let progress = makeProgress(pairs.count)
            judge = try await evaluator.judgeAccuracy(pairs, config: config, progress: progress)
            progress.end()
        }
        if let answers { try writeAnswers(rows, to: URL(fileURLWithPath: answers)) }
        let report = EvalReport(rows: rows, judge: judge)
        print(json ? String(decoding: try report.jsonData(), as: UTF8.self) : report.text())
        if profile && !json { print("\n" + report.profileText()) }
    }

    /// One `EvalAnswer` a line: {"method", "beam", "id", "family", "question", "reference", "predicted",
    /// "correct", "format_valid", "answer"}.
    func writeAnswers(_ rows: [EvalRow], to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for answer in rows.flatMap(\.answers) {
            data.append(try encoder.encode(answer))
            data.append(UInt8(ascii: "\n"))
        }
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw ValidationError("cannot write --answers \(url.path): \(error.localizedDescription)")
        }
    }

    /// --judge-pairs; else judge-test.jsonl beside the dataset when it exists; nil with --no-judge-pairs.
    func judgePairsURL(next dataset: URL) -> URL? {
        if noJudgePairs || coordinator != nil { return nil }
        if let judgePairs { return URL(fileURLWithPath: judgePairs) }
        let beside = dataset.deletingLastPathComponent().appendingPathComponent("judge-test.jsonl")
        return FileManager.default.fileExists(atPath: beside.path) ? beside : nil
    }

    func makeProgress(_ total: Int) -> BatchProgress {
        BatchProgress(
            total: total, alreadyDone: 0, terminal: isatty(STDERR_FILENO) == 1,
            interval: .milliseconds(Int64(progressIntervalS * 1000)),
            write: { FileHandle.standardError.write(Data($0.utf8)) })
    }
}

/// The engine's judge without its batching: a batch of comparisons becomes one engine call each.
struct OneComparisonAtATime: Judge {
    let inner: EngineJudge

    func judge(_ request: JudgeRequest) async throws -> JudgeReply { try await inner.judge(request) }
    func judgeMeasured(_ request: JudgeRequest) async throws -> MeasuredReply { try await inner.judgeMeasured(request) }
}
