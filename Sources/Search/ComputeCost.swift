/// What one generate or judge call cost on the engine that ran it. Reported by generators and judges
/// that measure (the in-process engine, the cluster's workers); a call answered from a restarted
/// job's journal cost nothing and reports none.
public struct ComputeCost: Codable, Sendable, Hashable {
    /// Encoding the image (when not cached) and prefilling the prompt's new tokens.
    public var prefillSeconds = 0.0
    /// Decoding: a generate call's batched decode of its candidates; a generate-mode verdict's tokens;
    /// a logprob verdict's choice tokens beyond the first.
    public var decodeSeconds = 0.0
    /// Tokens in the prompt (template, image, text).
    public var promptTokens = 0
    /// Of those, how many were taken from the engine's prefix cache instead of being computed.
    public var reusedPromptTokens = 0
    /// Tokens generated: a generate call's candidates together, a generate-mode verdict's (0 for a
    /// logprob verdict, which generates none).
    public var generatedTokens = 0

    public init(
        prefillSeconds: Double = 0, decodeSeconds: Double = 0, promptTokens: Int = 0, reusedPromptTokens: Int = 0,
        generatedTokens: Int = 0
    ) {
        self.prefillSeconds = prefillSeconds
        self.decodeSeconds = decodeSeconds
        self.promptTokens = promptTokens
        self.reusedPromptTokens = reusedPromptTokens
        self.generatedTokens = generatedTokens
    }

    private enum CodingKeys: String, CodingKey {
        case prefillSeconds, decodeSeconds, promptTokens, reusedPromptTokens, generatedTokens
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        prefillSeconds = try container.decode(Double.self, forKey: .prefillSeconds)
        decodeSeconds = try container.decode(Double.self, forKey: .decodeSeconds)
        promptTokens = try container.decode(Int.self, forKey: .promptTokens)
        reusedPromptTokens = try container.decode(Int.self, forKey: .reusedPromptTokens)
        // Records written before generated tokens were counted have none.
        generatedTokens = try container.decodeIfPresent(Int.self, forKey: .generatedTokens) ?? 0
    }

    public static func + (a: ComputeCost, b: ComputeCost) -> ComputeCost {
        ComputeCost(
            prefillSeconds: a.prefillSeconds + b.prefillSeconds, decodeSeconds: a.decodeSeconds + b.decodeSeconds,
            promptTokens: a.promptTokens + b.promptTokens, reusedPromptTokens: a.reusedPromptTokens + b.reusedPromptTokens,
            generatedTokens: a.generatedTokens + b.generatedTokens)
    }
}

/// One call as the search timed it: its wall time from the search's side, and what the engine
/// reported. The difference is time the call spent waiting (for the engine's queue, a worker's
/// credits, the network) or outside the engine (tokenizing, rendering).
public struct CallCost: Codable, Sendable, Hashable {
    public var wallSeconds: Double
    /// nil when the generator or judge does not measure.
    public var compute: ComputeCost?

    public init(wallSeconds: Double, compute: ComputeCost?) {
        self.wallSeconds = wallSeconds
        self.compute = compute
    }

    /// Wall time not spent computing (0 when nothing was measured, never negative).
    public var waitingSeconds: Double {
        guard let compute else { return 0 }
        return max(0, wallSeconds - compute.prefillSeconds - compute.decodeSeconds)
    }
}

/// Where a stage's time went, summed over its calls (call-seconds: concurrent calls add up, so the
/// parts may exceed the stage's wall time).
public struct StageCost: Codable, Sendable, Hashable {
    public var candidatePrefillSeconds = 0.0
    public var candidateDecodeSeconds = 0.0
    public var candidateWaitingSeconds = 0.0
    public var candidatePromptTokens = 0
    public var candidateReusedPromptTokens = 0
    public var judgePrefillSeconds = 0.0
    public var judgeDecodeSeconds = 0.0
    public var judgeWaitingSeconds = 0.0
    public var judgePromptTokens = 0
    public var judgeReusedPromptTokens = 0
    /// Calls that reported what they cost (the others count in no part).
    public var measuredCalls = 0

    public init() {}

    mutating func addGenerate(_ cost: CallCost) {
        guard let compute = cost.compute else { return }
        measuredCalls += 1
        candidatePrefillSeconds += compute.prefillSeconds
        candidateDecodeSeconds += compute.decodeSeconds
        candidateWaitingSeconds += cost.waitingSeconds
        candidatePromptTokens += compute.promptTokens
        candidateReusedPromptTokens += compute.reusedPromptTokens
    }

    mutating func addJudge(_ cost: CallCost) {
        guard let compute = cost.compute else { return }
        measuredCalls += 1
        judgePrefillSeconds += compute.prefillSeconds
        judgeDecodeSeconds += compute.decodeSeconds
        judgeWaitingSeconds += cost.waitingSeconds
        judgePromptTokens += compute.promptTokens
        judgeReusedPromptTokens += compute.reusedPromptTokens
    }

    /// Adds the cost of a tournament's judge calls.
    public mutating func add(_ tournament: TournamentRecord?) {
        for call in tournament?.matches.flatMap(\.calls) ?? [] {
            if let cost = call.cost { addJudge(cost) }
        }
    }

    public static func + (a: StageCost, b: StageCost) -> StageCost {
        var sum = a
        sum.candidatePrefillSeconds += b.candidatePrefillSeconds
        sum.candidateDecodeSeconds += b.candidateDecodeSeconds
        sum.candidateWaitingSeconds += b.candidateWaitingSeconds
        sum.candidatePromptTokens += b.candidatePromptTokens
        sum.candidateReusedPromptTokens += b.candidateReusedPromptTokens
        sum.judgePrefillSeconds += b.judgePrefillSeconds
        sum.judgeDecodeSeconds += b.judgeDecodeSeconds
        sum.judgeWaitingSeconds += b.judgeWaitingSeconds
        sum.judgePromptTokens += b.judgePromptTokens
        sum.judgeReusedPromptTokens += b.judgeReusedPromptTokens
        sum.measuredCalls += b.measuredCalls
        return sum
    }
}

/// Candidates and what generating them cost.
public struct MeasuredCandidates: Sendable {
    public var candidates: [GeneratedCandidate]
    public var cost: ComputeCost?

    public init(candidates: [GeneratedCandidate], cost: ComputeCost?) {
        self.candidates = candidates
        self.cost = cost
    }
}

/// A judge's reply and what computing it cost.
public struct MeasuredReply: Sendable {
    public var reply: JudgeReply
    public var cost: ComputeCost?

    public init(reply: JudgeReply, cost: ComputeCost?) {
        self.reply = reply
        self.cost = cost
    }
}
