import Cluster
import Wire

// Judge requests with several matches (`JudgeRequest.more_matches`): each match is the request's
// settings with its own prompt and seed, answered in `JudgeResult.match_results`.

extension Stagebeam_V1_JudgeRequest {
    /// The request's matches as single-match requests, in order: the first is the request itself.
    var singleMatches: [Stagebeam_V1_JudgeRequest] {
        var first = self
        first.moreMatches = []
        return [first]
            + moreMatches.map { match in
                var single = first
                single.prompt = match.prompt
                single.seed = match.seed
                return single
            }
    }
}

extension Stagebeam_V1_JudgeMatchResult {
    /// One match's answer from the result `answer` gives that match alone; a prompt too long for the
    /// context answers this match (the others go on), any other error fails the whole request.
    init(_ answer: () async throws -> Stagebeam_V1_JudgeResult) async throws {
        let result: Stagebeam_V1_JudgeResult
        do {
            result = try await answer()
        } catch let error as ClusterError where error.code == .promptTooLong {
            self.init()
            self.error = error.wire
            return
        }
        self.init(result)
    }
}

/// Serves `request` through `judgeOne`, which judges single-match requests: a request with more
/// matches has each judged alone, all at once (for backends that batch on their own side).
func judgeMatchByMatch(
    _ request: Stagebeam_V1_JudgeRequest,
    _ judgeOne: @escaping @Sendable (Stagebeam_V1_JudgeRequest) async throws -> Stagebeam_V1_JudgeResult
) async throws -> Stagebeam_V1_JudgeResult {
    if request.moreMatches.isEmpty { return try await judgeOne(request) }
    let matches = request.singleMatches
    let answers = try await withThrowingTaskGroup(of: (Int, Stagebeam_V1_JudgeMatchResult).self) { group in
        for (k, match) in matches.enumerated() {
            group.addTask { (k, try await Stagebeam_V1_JudgeMatchResult { try await judgeOne(match) }) }
        }
        var answers = [Stagebeam_V1_JudgeMatchResult](repeating: .init(), count: matches.count)
        for try await (k, answer) in group { answers[k] = answer }
        return answers
    }
    var result = Stagebeam_V1_JudgeResult()
    result.requestID = request.requestID
    result.jobID = request.jobID
    result.matchResults = answers
    return result
}
