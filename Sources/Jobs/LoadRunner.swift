import Cluster
import Foundation
import Logging
import Search
import Synchronization
import Transport
import Wire

/// Offers load to a coordinator and measures what comes back.
///
/// Each job is distinct: job i asks question i mod (number of questions) with the seed
/// `ItemSeed.seed(batch: seed, id: "request-i")`, under a fresh job id, so the coordinator computes
/// every one (nothing is answered from its journal). A `status` sample is taken every
/// `statusInterval` for worker utilisation and queue depth.
public final class LoadRunner: Sendable {
    public struct Limits: Sendable {
        /// Stop submitting after this many jobs…
        public var requests: Int?
        /// …or after this many seconds (jobs in flight then still finish and count).
        public var duration: Double?

        public init(requests: Int?, duration: Double?) {
            self.requests = requests
            self.duration = duration
        }
    }

    let endpoint: String
    let curve: CurveRole?
    let questions: [BatchItem]
    let seed: UInt64
    /// Rate profiles: at most this many jobs in flight (each holds one client link).
    let maxInFlight: Int
    let statusInterval: Duration
    let logger: Logger
    private let context: ZMQContext
    /// Client links with no job in flight, kept for the next job.
    private let idle = Mutex<[Client]>([])

    /// `curve`: keys for a coordinator that requires them.
    public init(
        endpoint: String, questions: [BatchItem], seed: UInt64, maxInFlight: Int = 64, statusInterval: Duration = .milliseconds(500),
        curve: CurveRole? = nil, logger: Logger = Logger(label: "loadtest")
    ) throws {
        self.curve = curve
        guard !questions.isEmpty else { throw JobsError(.invalidArgument, "a load test needs at least one question") }
        self.endpoint = endpoint
        self.questions = questions
        self.seed = seed
        self.maxInFlight = maxInFlight
        self.statusInterval = statusInterval
        self.logger = logger
        context = try ZMQContext()
    }

    public func close() {
        idle.withLock { idle in
            for client in idle { client.close() }
            idle = []
        }
    }

    /// One run: `profile` under `limits` with `settings`' search options.
    public func run(name: String, profile: LoadProfile, limits: Limits, settings: BatchJobSettings, slo: SLO) async throws -> LoadRunResult
    {
        let start = ContinuousClock.now
        let sampler = try StatusSampler(
            client: Client(context: context, endpoint: endpoint, curve: curve, logger: logger), start: start, interval: statusInterval)
        let samplerTask = Task { await sampler.run() }
        let samples: [RequestSample]
        switch profile {
        case .concurrency(let concurrency):
            samples = try await closedLoop(concurrency: concurrency, limits: limits, settings: settings, start: start)
        case .rate(let rate):
            samples = try await poisson(rate: rate, limits: limits, settings: settings, start: start)
        }
        await sampler.stop()
        await samplerTask.value
        let config = settings.reported(seed: 0)
        return LoadRunResult(
            name: name, profile: profile, method: config.method.rawValue, beam: config.beam, samples: samples,
            status: sampler.samples, slo: slo)
    }

    /// `concurrency` loops, each submitting its next job when the last one finished.
    private func closedLoop(concurrency: Int, limits: Limits, settings: BatchJobSettings, start: ContinuousClock.Instant) async throws
        -> [RequestSample]
    {
        let counter = Counter()
        return try await withThrowingTaskGroup(of: [RequestSample].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var mine: [RequestSample] = []
                    while true {
                        if let duration = limits.duration, seconds(since: start) >= duration { break }
                        let index = counter.next()
                        if let requests = limits.requests, index >= requests { break }
                        mine.append(try await self.submit(index, settings: settings, start: start))
                    }
                    return mine
                }
            }
            var all: [RequestSample] = []
            for try await part in group { all += part }
            return all
        }
    }

    /// Submissions at Poisson arrival times (exponential gaps, mean 1/rate), whatever is in flight,
    /// up to `maxInFlight` (beyond it the client, not the cluster, would be the bottleneck: arrivals wait).
    private func poisson(rate: Double, limits: Limits, settings: BatchJobSettings, start: ContinuousClock.Instant) async throws
        -> [RequestSample]
    {
        var random = SplitMix64(seed: SeedDerivation.mix(seed ^ rate.bitPattern))
        return try await withThrowingTaskGroup(of: RequestSample.self) { group in
            var all: [RequestSample] = []
            var inFlight = 0
            var due = 0.0
            var index = 0
            var delayed = 0
            while true {
                if let requests = limits.requests, index >= requests { break }
                let uniform = Double(random.next() >> 11) / Double(1 << 53)
                due += -Foundation.log(1 - uniform) / rate
                if let duration = limits.duration, due >= duration { break }
                let wait = due - seconds(since: start)
                if wait > 0 { try await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
                if inFlight >= maxInFlight {
                    delayed += 1
                    all.append(try await group.next()!)
                    inFlight -= 1
                }
                let job = index
                group.addTask { try await self.submit(job, settings: settings, start: start) }
                inFlight += 1
                index += 1
            }
            for try await sample in group { all.append(sample) }
            if delayed > 0 {
                logger.warning(
                    "arrivals waited for a client slot (raise --max-in-flight)",
                    metadata: [
                        "arrivals": .stringConvertible(delayed), "max_in_flight": .stringConvertible(maxInFlight)
                    ])
            }
            return all
        }
    }

    private func submit(_ index: Int, settings: BatchJobSettings, start: ContinuousClock.Instant) async throws -> RequestSample {
        let item = questions[index % questions.count]
        var submit = settings.submitJob(question: item.question, seed: ItemSeed.seed(batch: seed, id: "request-\(index)"))
        if let image = item.image { submit.image = try image.load() }
        if let templates = settings.judgeTemplatesJSON { submit.judgeTemplatesJson = templates }
        let client = try idle.withLock { $0.popLast() } ?? Client(context: context, endpoint: endpoint, curve: curve, logger: logger)
        defer { idle.withLock { $0.append(client) } }
        let submitted = seconds(since: start)
        var sample = RequestSample(
            index: index, start: submitted, latency: 0, succeeded: false, errorCode: nil, queueMs: 0, stageMs: [:],
            generatedTokens: 0, judgeCalls: 0, candidates: 0)
        do {
            guard let result = try await withTimeout(settings.timeout, { [submit] in try await client.submit(submit) }) else {
                sample.latency = seconds(since: start) - submitted
                sample.errorCode = "timeout"
                return sample
            }
            sample.latency = seconds(since: start) - submitted
            sample.succeeded = result.status == .succeeded
            if result.hasError { sample.errorCode = ClusterError.name(result.error.code) }
            sample.queueMs = result.queueMs
            for stage in result.stages {
                sample.stageMs[ItemOutcome.stageName(stage.stage), default: 0] += stage.generateMs + stage.judgeMs
            }
            sample.generatedTokens = Int(result.counts.generatedTokens)
            sample.judgeCalls = Int(result.counts.judgeCalls)
            sample.candidates = Int(result.counts.candidates)
        } catch {
            sample.latency = seconds(since: start) - submitted
            sample.errorCode = (error as? ClusterError).map { ClusterError.name($0.code) } ?? "client"
        }
        return sample
    }
}

/// Polls the coordinator's status until stopped.
private final class StatusSampler: Sendable {
    let client: Client
    let start: ContinuousClock.Instant
    let interval: Duration
    private let stopped = Mutex(false)
    private let taken = Mutex<[StatusSample]>([])

    init(client: Client, start: ContinuousClock.Instant, interval: Duration) {
        self.client = client
        self.start = start
        self.interval = interval
    }

    var samples: [StatusSample] { taken.withLock { $0 } }

    func run() async {
        while !stopped.withLock({ $0 }) {
            await sample()
            try? await Task.sleep(for: interval)
        }
        // One last sample, so that a run shorter than the interval still has a start and an end.
        await sample()
        client.close()
    }

    func stop() async {
        stopped.withLock { $0 = true }
    }

    private func sample() async {
        // A coordinator that does not answer within the interval yields no sample (and no hang).
        guard let reply = try? await withTimeout(interval * 4, { [client] in try await client.status() }) else { return }
        let sample = StatusSample(
            time: seconds(since: start), queueDepth: Int(reply.queueDepth), runningJobs: Int(reply.runningJobs),
            workers: reply.workers.map {
                WorkerSample(
                    worker: $0.workerID, inFlight: Int($0.inFlightSequences), maxBatch: Int($0.maxBatchSequences),
                    utilisation: $0.utilisation, requestsCompleted: $0.requestsCompleted)
            })
        taken.withLock { $0.append(sample) }
    }
}

private final class Counter: Sendable {
    private let value = Mutex(0)

    func next() -> Int {
        value.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let (whole, attoseconds) = (ContinuousClock.now - start).components
    return Double(whole) + Double(attoseconds) * 1e-18
}
