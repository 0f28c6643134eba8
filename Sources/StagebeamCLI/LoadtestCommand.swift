import ArgumentParser
import Foundation
import Jobs
import Search

struct LoadtestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Offer load to a running coordinator and report throughput, latency, goodput and worker utilisation.",
        discussion: """
            Writes PREFIX.json (every run, every job), PREFIX.csv (one row per run) and PREFIX.html (plots) and \
            prints a table. --sweep raises a Poisson rate by --rate-factor from --start-rate until the SLO breaks \
            (without --slo: until jobs fail or throughput falls under 80% of the offered rate), at most --max-steps \
            runs and --max-sweep-s seconds. Only loopback and private-network coordinators unless --allow-public.
            """)

    @Option(help: "The coordinator's endpoint, e.g. tcp://127.0.0.1:5555.")
    var coordinator: String
    @Option(help: "Closed loop: this many jobs always in flight.")
    var concurrency: Int?
    @Option(help: "Open loop: Poisson arrivals at this many jobs per second (seeded by --seed).")
    var rate: Double?
    @Flag(help: "Raise the rate step by step until the SLO breaks.")
    var sweep = false
    @Option(help: "Jobs per run.")
    var requests: Int?
    @Option(name: .customLong("duration"), help: "Seconds of submissions per run (instead of --requests).")
    var duration: Double?
    @OptionGroup var search: SearchOptions
    @OptionGroup var curve: ClientCurveOptions
    @OptionGroup var connect: ConnectOptions
    @OptionGroup var logging: LogOptions
    @Option(help: "Beam widths to run in turn, comma-separated (default: --beam).")
    var beams: String?
    @Option(help: "Objective(s), e.g. latency_p99:20s, error_rate:1% (repeatable or comma-separated).")
    var slo: [String] = []
    @Option(help: "Report files: PREFIX.json, PREFIX.csv, PREFIX.html.")
    var output: String
    @Option(help: "Question asked (varied by the per-job seed).")
    var question = "What is the capital of France?"
    @Option(help: "Take the questions from a batch input file instead (JSONL, LLaVA-CoT or VLMEvalKit TSV), in turn.")
    var input: String?
    @Option(name: .customLong("images-dir"), help: "Directory the input's image paths are relative to.")
    var imagesDir: String?
    @Option(name: .customLong("start-rate"), help: "Sweep: first rate (jobs/s).")
    var startRate = 0.5
    @Option(name: .customLong("rate-factor"), help: "Sweep: each rate is the previous one times this.")
    var rateFactor = 1.5
    @Option(name: .customLong("max-steps"), help: "Sweep: at most this many runs (per beam).")
    var maxSteps = 8
    @Option(name: .customLong("max-sweep-s"), help: "Sweep: stop starting runs after this many seconds (per beam).")
    var maxSweepS = 600.0
    @Option(name: .customLong("max-in-flight"), help: "Rate profiles: at most this many jobs in flight from this client.")
    var maxInFlight = 64
    @Option(name: .customLong("timeout-s"), help: "A job with no result after this many seconds counts as failed (\"timeout\").")
    var timeoutS = 600.0
    @Option(name: .customLong("status-interval-ms"), help: "How often to sample the coordinator's status for utilisation.")
    var statusIntervalMs = 100
    @Flag(name: .customLong("allow-public"), help: "Allow a coordinator outside loopback and private networks.")
    var allowPublic = false

    func validate() throws {
        if [concurrency != nil, rate != nil, sweep].filter({ $0 }).count != 1 {
            throw ValidationError("give exactly one of --concurrency, --rate, --sweep")
        }
        if (requests == nil) == (duration == nil) { throw ValidationError("give exactly one of --requests and --duration") }
        if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be ≥ 1") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be > 0") }
        if let requests, requests < 1 { throw ValidationError("--requests must be ≥ 1") }
        if let duration, !(duration > 0) { throw ValidationError("--duration must be > 0") }
        if !(timeoutS > 0) { throw ValidationError("--timeout-s must be > 0") }
        if maxInFlight < 1 { throw ValidationError("--max-in-flight must be ≥ 1") }
        if statusIntervalMs < 10 { throw ValidationError("--status-interval-ms must be ≥ 10") }
        if !allowPublic, !LoadTest.isLocalOrPrivate(coordinator) {
            throw ValidationError(
                "\(coordinator) is not on loopback or a private network; load tests are for your own cluster (--allow-public to override)")
        }
        _ = try beamList()
        _ = try SLO(parsing: slo)
    }

    func beamList() throws -> [Int] {
        guard let beams else { return [search.beam ?? SearchConfig().beam] }
        let list = beams.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !list.isEmpty, list.count == beams.split(separator: ",").count, list.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--beams takes positive integers separated by commas, got '\(beams)'")
        }
        return list
    }

    func run() async throws {
        try logging.bootstrap()
        let objective = try SLO(parsing: slo)
        let questions =
            try input.map { path in
                let batch = try BatchInput.read(URL(fileURLWithPath: path), imagesDirectory: imagesDir.map { URL(fileURLWithPath: $0) })
                for problem in batch.problems { printError("input \(path) \(problem) (skipped)") }
                return batch.items
            } ?? [BatchItem(id: "question", question: question, line: 1)]
        var settings = BatchJobSettings(
            choices: search.choices,
            timeout: .milliseconds(Int64(timeoutS * 1000)))
        if let path = search.judgeTemplates {
            _ = try search.templates()
            settings.judgeTemplatesJSON = try readFile(path, what: "--judge-templates")
        }
        let mode: LoadTest.Mode =
            if let concurrency { .profile(.concurrency(concurrency)) } else if let rate { .profile(.rate(rate)) } else {
                .sweep(try LoadSweep(startRate: startRate, factor: rateFactor, maxSteps: maxSteps, maxSeconds: maxSweepS))
            }
        try await connect.check(coordinator, curve: try curve.role())
        let runner = try LoadRunner(
            endpoint: coordinator, questions: questions, seed: search.seed, maxInFlight: maxInFlight,
            statusInterval: .milliseconds(statusIntervalMs), curve: try curve.role())
        let report = try await LoadTest.run(
            runner: runner, mode: mode, beams: try beamList(), limits: .init(requests: requests, duration: duration),
            settings: settings, slo: objective, coordinator: coordinator, log: { printError($0) })
        runner.close()
        print(LoadTable.text(report))
        for path in try LoadTest.write(report, prefix: output) { printError("wrote \(path)") }
    }
}
