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
    public var config: SearchConfig
    /// A judge-templates JSON file's bytes replacing the built-in templates, if any.
    public var judgeTemplatesJSON: Data?
    public var recordSearch: Bool

    public init(config: SearchConfig, judgeTemplatesJSON: Data? = nil, recordSearch: Bool = false) {
        self.config = config
        self.judgeTemplatesJSON = judgeTemplatesJSON
        self.recordSearch = recordSearch
    }

    /// The configuration of one item: the batch's, with the item's seed.
    func config(seed: UInt64) -> SearchConfig {
        var config = self.config
        config.seed = seed
        return config
    }

    /// The validated configuration (what the output reports: greedy runs as beam 1).
    func reported(seed: UInt64) -> SearchConfig {
        (try? config(seed: seed).validated()) ?? config(seed: seed)
    }
}

func milliseconds(since start: ContinuousClock.Instant) -> Double {
    let (seconds, attoseconds) = (ContinuousClock.now - start).components
    return Double(seconds) * 1000 + Double(attoseconds) * 1e-15
}
