/// One scoring call: a pointwise score for each of several candidates in their context. The search
/// renders the verification wording from `RewardTemplates`; a scorer applies its own chat template.
public struct ScoreRequest: Codable, Sendable, Hashable {
    /// What is scored: a stage's candidates, or whole answers (`answer`).
    public var topic: JudgeTopic
    public var question: String
    /// Content hash of the image; its bytes travel separately. nil for a text-only question.
    public var imageRef: String?
    /// One entry per candidate: the assistant's text up to and including the scored stage's closing
    /// tag (earlier chosen stages, then the candidate). Candidates may continue different prefixes.
    public var answers: [String]
    /// Self-reward: the user turn that follows the answer and asks whether it is right.
    public var verification: String
    /// Self-reward: the assistant turn after `verification` starts with this text.
    public var verdictPrefix: String
    /// Self-reward: the "yes" and "no" strings whose log-probabilities after `verdictPrefix` are compared.
    public var choices: [String]

    public var count: Int { answers.count }

    public init(
        topic: JudgeTopic, question: String, imageRef: String?, answers: [String], verification: String,
        verdictPrefix: String, choices: [String]
    ) {
        self.topic = topic
        self.question = question
        self.imageRef = imageRef
        self.answers = answers
        self.verification = verification
        self.verdictPrefix = verdictPrefix
        self.choices = choices
    }

    /// The request the search sends for `answers` on `topic`, with the templates' wording.
    public init(scoring answers: [String], topic: JudgeTopic, question: String, imageRef: String?, templates: RewardTemplates) {
        self.init(
            topic: topic, question: question, imageRef: imageRef, answers: answers,
            verification: templates.renderVerification(topic: topic, question: question),
            verdictPrefix: templates.verdictPrefix, choices: templates.choices)
    }
}

/// Scores candidates one by one (pointwise), beside the pairwise `Judge`. Implemented by the
/// policy model itself (self-reward), a sequence-classification reward model, or the cluster.
///
/// Must return exactly `request.count` scores, in the order of `request.answers`; higher is better;
/// the same input always gets the same score (no sampling), whatever else shares the call. A
/// candidate that cannot be scored (its text leaves the scorer's context no room) scores −∞.
public protocol Scorer: Sendable {
    func score(_ request: ScoreRequest) async throws -> [Double]
}
