import Foundation

/// How load is offered: a fixed number of jobs always in flight, or jobs arriving as a Poisson process.
public enum LoadProfile: Sendable, Codable, Equatable, CustomStringConvertible {
    case concurrency(Int)
    /// Jobs per second; exponential gaps drawn from a seeded generator, so a run is repeatable.
    case rate(Double)

    /// JSON: `{"kind": "concurrency" | "rate", "value": N}`.
    enum CodingKeys: String, CodingKey { case kind, value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let value = try container.decode(Double.self, forKey: .value)
        switch try container.decode(String.self, forKey: .kind) {
        case "concurrency": self = .concurrency(Int(value))
        case "rate": self = .rate(value)
        case let kind:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: container, debugDescription: "unknown load profile '\(kind)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .concurrency(let c):
            try container.encode("concurrency", forKey: .kind)
            try container.encode(Double(c), forKey: .value)
        case .rate(let r):
            try container.encode("rate", forKey: .kind)
            try container.encode(r, forKey: .value)
        }
    }

    public var description: String {
        switch self {
        case .concurrency(let c): "concurrency \(c)"
        case .rate(let r): String(format: "rate %.3g/s", r)
        }
    }
}

/// One job of a load test, as the client saw it.
public struct RequestSample: Sendable, Codable {
    public var index: Int
    /// When it was submitted, seconds after the run started.
    public var start: Double
    /// Submit to result, seconds (client side: includes the coordinator's queue).
    public var latency: Double
    public var succeeded: Bool
    public var errorCode: String?
    public var queueMs: Double
    /// Generate + judge milliseconds per stage, as the coordinator measured them.
    public var stageMs: [String: Double]
    public var generatedTokens: Int
    public var judgeCalls: Int
    public var candidates: Int
}

/// The coordinator's view of one worker at one moment (`status`).
public struct WorkerSample: Sendable, Codable {
    public var worker: String
    public var inFlight: Int
    public var maxBatch: Int
    /// The coordinator's busy fraction over its last minute.
    public var utilisation: Double
    public var requestsCompleted: UInt64
}

public struct StatusSample: Sendable, Codable {
    /// Seconds after the run started.
    public var time: Double
    public var queueDepth: Int
    public var runningJobs: Int
    public var workers: [WorkerSample]
}

/// p50/p90/p99/mean/max of some durations, in seconds.
public struct Distribution: Sendable, Codable {
    public var count: Int
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var mean: Double
    public var max: Double

    public init(_ values: [Double]) {
        let sorted = values.sorted()
        count = sorted.count
        p50 = Percentiles.value(sorted, 50) ?? 0
        p90 = Percentiles.value(sorted, 90) ?? 0
        p99 = Percentiles.value(sorted, 99) ?? 0
        mean = sorted.isEmpty ? 0 : sorted.reduce(0, +) / Double(sorted.count)
        max = sorted.last ?? 0
    }
}

/// A worker's load over a run, from the status samples.
public struct WorkerUtilisation: Sendable, Codable {
    public var worker: String
    /// Fraction of samples with any sequence in flight.
    public var busy: Double
    /// Mean sequences in flight over the worker's credits.
    public var creditUse: Double
    /// Requests it completed during the run.
    public var requests: UInt64
    /// The coordinator's own figure (last minute) at the end of the run.
    public var coordinatorUtilisation: Double
}

/// Everything measured in one run of a load test.
public struct LoadRunResult: Sendable, Codable {
    public var name: String
    public var profile: LoadProfile
    public var method: String
    public var beam: Int
    public var requests: Int
    public var succeeded: Int
    public var failed: Int
    public var errors: [String: Int]
    /// First submission to last result.
    public var duration: Double
    public var jobsPerSecond: Double
    /// Offered load: submissions per second over the time submissions were made.
    public var offeredPerSecond: Double
    public var latency: Distribution
    public var queue: Distribution
    public var stageLatency: [String: Distribution]
    public var candidateTokensPerSecond: Double
    public var candidatesPerSecond: Double
    public var judgeCallsPerSecond: Double
    public var goodput: Double
    public var sloMet: Bool?
    public var workers: [WorkerUtilisation]
    public var samples: [RequestSample]
    public var status: [StatusSample]

    init(name: String, profile: LoadProfile, method: String, beam: Int, samples: [RequestSample], status: [StatusSample], slo: SLO) {
        self.name = name
        self.profile = profile
        self.method = method
        self.beam = beam
        self.samples = samples.sorted { $0.index < $1.index }
        self.status = status
        requests = samples.count
        let good = samples.filter(\.succeeded)
        succeeded = good.count
        failed = requests - succeeded
        errors = Dictionary(grouping: samples.compactMap(\.errorCode), by: { $0 }).mapValues(\.count)
        let first = samples.map(\.start).min() ?? 0
        let lastSubmit = samples.map(\.start).max() ?? 0
        let duration = (samples.map { $0.start + $0.latency }.max() ?? 0) - first
        self.duration = duration
        let perSecond = { (value: Double) in duration > 0 ? value / duration : 0 }
        jobsPerSecond = perSecond(Double(requests))
        offeredPerSecond = lastSubmit > first ? Double(requests - 1) / (lastSubmit - first) : 0
        latency = Distribution(good.map(\.latency))
        queue = Distribution(good.map { $0.queueMs / 1000 })
        var stages: [String: [Double]] = [:]
        for sample in good { for (stage, ms) in sample.stageMs { stages[stage, default: []].append(ms / 1000) } }
        stageLatency = stages.mapValues(Distribution.init)
        candidateTokensPerSecond = perSecond(Double(good.map(\.generatedTokens).reduce(0, +)))
        candidatesPerSecond = perSecond(Double(good.map(\.candidates).reduce(0, +)))
        judgeCallsPerSecond = perSecond(Double(good.map(\.judgeCalls).reduce(0, +)))
        let bound = slo.latencyBound ?? .infinity
        goodput = perSecond(Double(good.filter { $0.latency <= bound }.count))
        sloMet = slo.specs.isEmpty ? nil : slo.met(latencies: good.map(\.latency), failed: failed, total: requests)
        workers = Self.utilisation(status)
    }

    static func utilisation(_ status: [StatusSample]) -> [WorkerUtilisation] {
        let ids = Set(status.flatMap { $0.workers.map(\.worker) }).sorted()
        return ids.map { id in
            let seen = status.compactMap { sample in sample.workers.first { $0.worker == id } }
            let busy = seen.isEmpty ? 0 : Double(seen.filter { $0.inFlight > 0 }.count) / Double(seen.count)
            let use = seen.isEmpty ? 0 : seen.map { Double($0.inFlight) / Double(max($0.maxBatch, 1)) }.reduce(0, +) / Double(seen.count)
            let requests = (seen.last?.requestsCompleted ?? 0) - min(seen.first?.requestsCompleted ?? 0, seen.last?.requestsCompleted ?? 0)
            return WorkerUtilisation(
                worker: id, busy: busy, creditUse: use, requests: requests,
                coordinatorUtilisation: seen.last?.utilisation ?? 0)
        }
    }
}

/// A load test's whole report: the settings and every run, in order.
public struct LoadReport: Sendable, Codable {
    public var coordinator: String
    public var started: String
    public var slo: String
    /// The SLO's tightest latency bound in seconds (drawn on the latency plot).
    public var latencyBound: Double?
    public var runs: [LoadRunResult]
    /// Sweep: the highest offered rate whose run met the SLO (nil when none did, or not a sweep).
    public var saturationRate: Double?
    /// Sweep: why it stopped.
    public var stopReason: String?
}
