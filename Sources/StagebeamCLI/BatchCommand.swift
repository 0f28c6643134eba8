import ArgumentParser
import Cluster
import Foundation
import Jobs
import LocalEngine
import Search

struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Answer every question of a file (JSONL, LLaVA-CoT-100k records, VLMEvalKit TSV), one output line per item; resumable.",
        discussion: """
            Kill it at any moment and run the same command again: items already in --output are skipped, and \
            each id appears there once. Each item's seed derives from --seed and its id (see ItemSeed), so a \
            resumed run's answers equal an uninterrupted run's.
            """)

    @Option(help: "The coordinator's endpoint (tcp://HOST:PORT); without it the batch runs in this process.")
    var coordinator: String?
    @Option(help: "In process: the model directory (default: $STAGEBEAM_MODEL, else the built-in models/stagebeam-shapes).")
    var model: String?
    @Option(help: "In process: compute threads (default: all cores).")
    var threads: Int?
    @Option(name: .customLong("kv-capacity"), help: "In process: KV cache size in tokens.")
    var kvCapacity = 16384
    @Option(name: .customLong("chat-template"), help: "In process: a Jinja chat template file replacing the model's.")
    var chatTemplate: String?

    @Option(
        help: "Input: .jsonl ({id, image, question} or LLaVA-CoT {id, image, conversations}), a JSON array of those, or a VLMEvalKit .tsv.")
    var input: String
    @Option(help: "Output JSONL; appended to, and read on start to skip finished items.")
    var output: String
    @Option(name: .customLong("images-dir"), help: "Directory image paths are relative to (default: the input file's).")
    var imagesDir: String?
    @OptionGroup var search: SearchOptions
    @OptionGroup var curve: ClientCurveOptions
    @OptionGroup var connect: ConnectOptions
    @OptionGroup var logging: LogOptions
    @Option(help: "Items in flight at once (jobs submitted to the coordinator).")
    var concurrency = 4
    @Flag(name: .customLong("record-search"), help: "Put each item's full search record (candidates, tournaments) under \"search\".")
    var recordSearch = false
    @Flag(name: .customLong("retry-failed"), help: "Run again the items whose output line says they failed (their old lines are removed).")
    var retryFailed = false
    @Option(
        name: .customLong("timeout-s"),
        help: "With --coordinator: an item with no result after this many seconds fails with deadline_exceeded (0: wait).")
    var timeoutS = 0.0
    @Option(name: .customLong("progress-interval-s"), help: "Seconds between progress lines when standard error is not a terminal.")
    var progressIntervalS = 10.0

    func validate() throws {
        if coordinator != nil, model != nil { throw ValidationError("give --coordinator or --model, not both") }
        if concurrency < 1 { throw ValidationError("--concurrency must be ≥ 1") }
        if !(progressIntervalS > 0) { throw ValidationError("--progress-interval-s must be > 0") }
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1") }
        if !(timeoutS >= 0) { throw ValidationError("--timeout-s must be ≥ 0") }
    }

    func run() async throws {
        try logging.bootstrap()
        let input = try BatchInput.read(URL(fileURLWithPath: input), imagesDirectory: imagesDir.map { URL(fileURLWithPath: $0) })
        for problem in input.problems { printError("input \(self.input) \(problem) (skipped)") }
        let outputFile = try ResultFile(url: URL(fileURLWithPath: output), retryFailed: retryFailed, log: printError)
        // In process the model's recommendations apply; a coordinator applies its workers' to what is unset.
        let recommendations =
            try coordinator == nil
            ? ModelRecommendations(model: model.map { URL(fileURLWithPath: $0) } ?? BuiltInModel.current.directory())
            : ModelRecommendations()
        var settings = BatchJobSettings(
            choices: search.choices, recommendations: recommendations, recordSearch: recordSearch,
            timeout: timeoutS > 0 ? .milliseconds(Int64(timeoutS * 1000)) : nil)
        let templates = try search.templates()
        if let path = search.judgeTemplates { settings.judgeTemplatesJSON = try readFile(path, what: "--judge-templates") }

        let runner: any ItemRunner
        var cluster: ClusterItemRunner?
        if let coordinator {
            try await connect.check(coordinator, curve: try curve.role())
            cluster = try ClusterItemRunner(
                endpoint: coordinator, settings: settings, concurrency: concurrency,
                curve: try curve.role())
            runner = cluster!
        } else {
            var arguments = ["--kv-capacity", String(kvCapacity)]
            if let model { arguments += ["--model", model] }
            if let threads { arguments += ["--threads", String(threads)] }
            if let chatTemplate { arguments += ["--chat-template", chatTemplate] }
            let engine = try EngineOptions.parse(arguments)
            let images = ImageStore()
            let local = try engine.makeLocalEngine(images: images)
            runner = LocalItemRunner(
                generator: local.generator, judge: local.judge, images: images, templates: templates, settings: settings)
        }
        let skipped = input.items.filter { outputFile.finished[$0.id] != nil }.count
        printError(
            "batch: \(input.items.count) item(s) from \(self.input) (\(input.format.rawValue)), \(skipped) already in \(output), "
                + "\(input.problems.count) input line(s) skipped")
        let progress = BatchProgress(
            total: input.items.count, alreadyDone: skipped, terminal: isatty(STDERR_FILENO) == 1,
            interval: .milliseconds(Int64(progressIntervalS * 1000)),
            write: { text in
                FileHandle.standardError.write(Data(text.utf8))
            })
        let summary = try await BatchRunner.run(
            items: input.items, output: outputFile, runner: runner, batchSeed: search.seed,
            concurrency: concurrency, progress: progress)
        cluster?.close()
        printError(summary.description)
        if !input.problems.isEmpty {
            // Those lines are in no output line: the run is not complete, whatever the items say.
            printError(
                "batch: \(input.problems.count) input line(s) of \(self.input) skipped (listed above); exiting with status \(Self.skippedLinesStatus)"
            )
            throw ExitCode(Self.skippedLinesStatus)
        }
    }

    /// Some input lines could not be read as items (the items that could were run).
    static let skippedLinesStatus: Int32 = 4
}
