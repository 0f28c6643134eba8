import ArgumentParser
import Cluster
import Foundation
import Logging
import Search
import Transport
import Wire
import WorkerHost

/// Many simulated workers in one process, registered with a real coordinator over real sockets, so
/// that the coordinator's dispatch, journal and fan-in can be measured with more workers than the
/// machine has cores (`scripts/bench/scaling-sim.sh`).
struct SimulateWorkersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate-workers",
        abstract: "Register simulated workers (real protocol, replayed answers, measured latencies) with a coordinator.",
        discussion: """
            Each worker answers generate and judge requests with candidates and verdicts replayed from search \
            records (`stagebeam run --json` on the real engine, whose records carry every call's engine time), \
            after the time the engine took: the recorded prefill of the stage, plus one decode step per token at \
            the step time measured for that many sequences (`stagebeam bench --batch`). Runs until SIGINT or SIGTERM.
            """)

    @Option(help: "The coordinator's endpoint.")
    var coordinator: String
    @Option(help: "Simulated generate workers.")
    var workers = 8
    @Option(name: .customLong("judge-workers"), help: "Simulated judge workers (0: the generate workers judge too).")
    var judgeWorkers = 0
    @Option(name: .customLong("max-batch"), help: "Credits of each worker: the most sequences it takes at once.")
    var maxBatch = 4
    @Option(help: ArgumentHelp("Search records to replay (JSON from `stagebeam run --json`), comma-separated.", valueName: "FILES"))
    var records: String
    @Option(
        name: .customLong("decode-step-ms"),
        help: ArgumentHelp("Measured decode step time by sequences decoded together, e.g. 1:2.0,4:2.6,16:6.1.", valueName: "N:MS,…"))
    var decodeStepMs: String
    @OptionGroup var logging: LogOptions

    func validate() throws {
        if workers < 1 { throw ValidationError("--workers must be ≥ 1") }
        if judgeWorkers < 0 { throw ValidationError("--judge-workers must be ≥ 0") }
        if maxBatch < 1 { throw ValidationError("--max-batch must be ≥ 1") }
        _ = try steps()
    }

    func steps() throws -> [(sequences: Int, seconds: Double)] {
        try decodeStepMs.split(separator: ",").map { part in
            let fields = part.split(separator: ":")
            guard fields.count == 2, let n = Int(fields[0]), let ms = Double(fields[1]), n > 0, ms > 0 else {
                throw ValidationError("--decode-step-ms: cannot read '\(part)' (expected N:MS with N ≥ 1 and MS > 0)")
            }
            return (n, ms / 1000)
        }
    }

    func run() async throws {
        try logging.bootstrap()
        let termination = TerminationSignals()
        let files = records.split(separator: ",").map { URL(fileURLWithPath: String($0)) }
        let results = try files.map { url in
            do {
                return try SearchResult(jsonData: try Data(contentsOf: url))
            } catch {
                throw ValidationError("--records: cannot read a search record from \(url.path): \(error)")
            }
        }
        let book = try ReplayBook(records: results, decodeStepSeconds: try steps())
        // One model for every simulated worker: the records they replay.
        let modelHash = "simulated-" + ContentHash.sha256Hex(Array(records.utf8)).prefix(16)
        let context = try ZMQContext()
        let logger = Logger(label: "simulated-worker")
        var all: [SimulatedWorker] = []
        for i in 0..<(workers + judgeWorkers) {
            let roles: [Stagebeam_V1_Role] = i < workers ? (judgeWorkers == 0 ? [.generate, .judge] : [.generate]) : [.judge]
            all.append(
                try SimulatedWorker(
                    context: context, endpoint: coordinator, workerID: String(format: "sim-%03d", i), roles: roles, maxBatch: maxBatch,
                    book: book, modelHash: modelHash, logger: logger))
        }
        printError("\(all.count) simulated workers connecting to \(coordinator)")
        let signal = await termination.first()
        printError("signal \(signal): closing \(all.count) simulated workers")
        for worker in all { worker.close() }
    }
}
