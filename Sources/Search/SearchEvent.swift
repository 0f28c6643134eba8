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
    /// `stage-beam`, `swires`: candidates of a stage were scored (`candidates`: their indices in the
    /// unit, `scores` in the same order).
    case scored(stage: Stage, unit: Int, candidates: [Int], scores: [Double])
    /// `stage-beam`, `swires`: the candidates of a stage kept for the next one, best first.
    case survivors(stage: Stage, unit: Int, candidates: [Int])
    /// `swires`: a stage fell short of its threshold and its previous stage was regenerated.
    case retraced(RetraceRecord)
}

/// Receives events; called from concurrent tasks during a bracket round, so it must be Sendable.
/// The search awaits it, so it should hand the event on (to a queue or socket thread) and return.
public typealias SearchEventSink = @Sendable (SearchEvent) async -> Void
