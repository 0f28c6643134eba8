import Cluster
import Foundation
import Search
import Wire

/// Runs one item's search somewhere (a coordinator, or this process) and never throws: a failure
/// becomes a failed outcome with its reason.
public protocol ItemRunner: Sendable {
    func run(_ item: BatchItem, seed: UInt64) async -> ItemOutcome
}

/// What every item of a batch shares: the search options and what to put in the output.
public struct BatchJobSettings: Sendable {
    /// The search options the batch chose. Those left unset take the model's recommended settings:
    /// `recommendations` in process; on a coordinator, the cluster model's, which the coordinator fills.
    public var choices: SearchSettings
    /// The model's recommended settings, in process (none known on a coordinator's client side).
    public var recommendations: ModelRecommendations
    /// A judge-templates JSON file's bytes replacing the built-in templates, if any.
    public var judgeTemplatesJSON: Data?
    public var recordSearch: Bool
    /// On a coordinator: give up on a job's result after this long (nil: wait as long as it takes).
    public var timeout: Duration?

    public init(
        choices: SearchSettings, recommendations: ModelRecommendations = ModelRecommendations(), judgeTemplatesJSON: Data? = nil,
        recordSearch: Bool = false, timeout: Duration? = nil
    ) {
        self.choices = choices
        self.recommendations = recommendations
        self.judgeTemplatesJSON = judgeTemplatesJSON
        self.recordSearch = recordSearch
        self.timeout = timeout
    }

    /// The configuration of one item run in process: the batch's, with the item's seed.
    func config(seed: UInt64) -> SearchConfig {
        var config = recommendations.config(choices: choices)
        config.seed = seed
        return config
    }

    /// One item's job for a coordinator: only the chosen search fields set, the rest left to it.
    func submitJob(question: String, seed: UInt64) -> Stagebeam_V1_SubmitJob {
        choices.submitJob(question: question, seed: seed)
    }

    /// The validated configuration (what the output reports: greedy runs as beam 1).
    func reported(seed: UInt64) -> SearchConfig {
        (try? config(seed: seed).validated()) ?? config(seed: seed)
    }
}

/// `work()`, or nil when it has not finished within `timeout` (nil: no limit); it is then cancelled.
/// A `Client` request cancelled so frees the client for another one; a job submitted goes on at the
/// coordinator, and submitting its id again re-attaches to it.
/// `work`'s result, or nil when `timeout` passes first (nil timeout: wait as long as it takes).
public func withTimeout<T: Sendable>(_ timeout: Duration?, _ work: @escaping @Sendable () async throws -> T) async throws -> T? {
    guard let timeout else { return try await work() }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await work() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

func milliseconds(since start: ContinuousClock.Instant) -> Double {
    let (seconds, attoseconds) = (ContinuousClock.now - start).components
    return Double(seconds) * 1000 + Double(attoseconds) * 1e-15
}
