/// Progress of a running search, for clients that watch a job.
public enum SearchEvent: Codable, Sendable, Hashable {
    /// A stage begins (every method, including best-of-N).
    case stageStarted(stage: Stage)
    /// A unit's candidates are generated and cut.
    case candidatesReady(stage: Stage, unit: Int, candidates: [CandidateRecord])
    /// A match is decided. Bracket matches of one round may report in any order.
    case verdict(topic: JudgeTopic, unit: Int, match: MatchRecord)
    /// A unit's tournament is over (or it had one candidate). For best-of-N: once, topic `answer`.
    case winner(topic: JudgeTopic, unit: Int, candidate: Int)
}

/// Receives events; called from concurrent tasks during a bracket round, so it must be Sendable.
/// The search awaits it, so it should hand the event on (to a queue or socket thread) and return.
public typealias SearchEventSink = @Sendable (SearchEvent) async -> Void
