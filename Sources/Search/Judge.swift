/// What a judge compares: one stage's candidates, or whole answers (best-of-N).
/// Each topic has its own criterion in the judge templates.
public enum JudgeTopic: String, CaseIterable, Codable, Sendable, Hashable {
    case summary, caption, reasoning, conclusion
    /// Complete four-stage answers (the best-of-N method's single tournament).
    case answer

    public init(_ stage: Stage) {
        switch stage {
        case .summary: self = .summary
        case .caption: self = .caption
        case .reasoning: self = .reasoning
        case .conclusion: self = .conclusion
        }
    }
}

/// How the judge gives its verdict.
public enum VerdictMode: String, Codable, Sendable, Hashable, CaseIterable {
    /// The judge writes a short verdict that the search parses for the first or second label.
    case generate
    /// One forward pass: the judge scores each choice string after the verdict prefix.
    case logprob
}

/// One judge call. The search renders the prompt from the judge templates, so the worker only applies
/// its chat template (with the image when `imageRef` is set) to `prompt` as the user message.
public struct JudgeRequest: Codable, Sendable, Hashable {
    public var topic: JudgeTopic
    public var imageRef: String?
    /// The user message: question, criterion, hints and the two candidates, rendered from the templates.
    public var prompt: String
    public var mode: VerdictMode
    /// `logprob` mode: the assistant turn starts with this text; empty in `generate` mode.
    public var verdictPrefix: String
    /// `logprob` mode: the two strings whose log-probabilities after `verdictPrefix` are compared
    /// (summed over their tokens when a string is more than one token). Empty in `generate` mode.
    public var choices: [String]
    /// `generate` mode: the verdict's token budget.
    public var maxNewTokens: Int
    /// `generate` mode: how the verdict is sampled.
    public var sampling: Sampling
    public var seed: UInt64

    public init(
        topic: JudgeTopic, imageRef: String?, prompt: String, mode: VerdictMode, verdictPrefix: String,
        choices: [String], maxNewTokens: Int, sampling: Sampling, seed: UInt64
    ) {
        self.topic = topic
        self.imageRef = imageRef
        self.prompt = prompt
        self.mode = mode
        self.verdictPrefix = verdictPrefix
        self.choices = choices
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.seed = seed
    }
}

/// A judge's answer; its case must match the request's mode.
public enum JudgeReply: Codable, Sendable, Hashable {
    /// `generate` mode: the verdict text as written.
    case verdict(text: String)
    /// `logprob` mode: log-probability of `choices[0]` and of `choices[1]` after the verdict prefix.
    case choiceLogprobs(first: Double, second: Double)
    /// The prompt (two whole answers, say) leaves the judge's context no room for a verdict. Not a
    /// failure of the search: the match is undecided, as when a verdict cannot be read.
    case promptTooLong(message: String)
}

/// Compares two candidates. Implemented by an in-process engine or by the cluster's dispatcher.
public protocol Judge: Sendable {
    func judge(_ request: JudgeRequest) async throws -> JudgeReply
    /// `judge`, with what it cost where it ran; the search calls this one. A judge that does not
    /// measure keeps the default, which reports no cost.
    func judgeMeasured(_ request: JudgeRequest) async throws -> MeasuredReply
    func judgeBatch(_ requests: [JudgeRequest]) async throws -> [MeasuredReply]
}

extension Judge {
    public func judgeMeasured(_ request: JudgeRequest) async throws -> MeasuredReply {
        MeasuredReply(reply: try await judge(request), cost: nil)
    }

    /// Several comparisons at once (a bracket round's), replies in the requests' order; each reply
    /// must be the one `judgeMeasured` gives its request alone. This default runs them concurrently
    /// (the cluster's judge spreads them over judge workers); the in-process engine decodes them as one batch.
    public func judgeBatch(_ requests: [JudgeRequest]) async throws -> [MeasuredReply] {
        try await withThrowingTaskGroup(of: (Int, MeasuredReply).self) { group in
            for (k, request) in requests.enumerated() {
                group.addTask { (k, try await judgeMeasured(request)) }
            }
            var replies = [MeasuredReply?](repeating: nil, count: requests.count)
            for try await (k, reply) in group { replies[k] = reply }
            return replies.map { $0! }
        }
    }
}
