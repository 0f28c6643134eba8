import Foundation

/// The self-reward's wording: after a candidate, a user turn asks whether it is right, and the
/// model's log-odds of "yes" over "no" after a short assistant prefix is the candidate's score.
/// Configuration, not code, like `JudgeTemplates`: the built-in set (`defaultRewardTemplatesJSON`)
/// can be replaced by a file of the same shape (`--reward-templates FILE`).
///
/// File shape (JSON):
/// ```
/// { "version": 1,
///   "verification": "… {criterion} … {question} …",   // the user turn after the candidate
///   "verdictPrefix": "Correct:",                      // the assistant turn starts so
///   "choices": [" yes", " no"],                       // scored after the prefix: yes first
///   "criteria": { "summary": "…", "caption": "…", "reasoning": "…", "conclusion": "…", "answer": "…" } }
/// ```
/// `verification` must contain {criterion} and may contain {question} and {stage}.
public struct RewardTemplates: Sendable, Equatable {
    public static let supportedVersion = 1

    public let verification: String
    public let verdictPrefix: String
    /// The "yes" string, then the "no" string.
    public let choices: [String]
    public let criteria: [JudgeTopic: String]

    /// The templates shipped with stagebeam.
    public static let builtIn: RewardTemplates = {
        do {
            return try RewardTemplates(json: Data(defaultRewardTemplatesJSON.utf8), source: "built-in reward templates")
        } catch {
            preconditionFailure("the built-in reward templates are invalid: \(error)")
        }
    }()

    /// Loads and validates a templates file; errors name the file and what is wrong.
    public init(contentsOf url: URL) throws {
        try self.init(json: JudgeTemplates.readFile(url, kind: "reward templates"), source: url.path)
    }

    /// Parses and validates templates; `source` names them in errors.
    public init(json: Data, source: String) throws {
        let file = try JudgeTemplates.decodeFile(File.self, json: json, source: source)
        func incomplete(_ message: String) -> SearchError { SearchError(.templatesIncomplete, "\(source): \(message)") }
        guard let version = file.version else { throw incomplete("missing field \"version\"") }
        guard version == Self.supportedVersion else {
            throw SearchError(.templatesMalformed, "\(source): version \(version) is not supported (expected \(Self.supportedVersion))")
        }
        guard let verification = file.verification else { throw incomplete("missing field \"verification\"") }
        guard let verdictPrefix = file.verdictPrefix else { throw incomplete("missing field \"verdictPrefix\"") }
        guard let choices = file.choices else { throw incomplete("missing field \"choices\"") }
        guard choices.count == 2, choices.allSatisfy({ !$0.isEmpty }), choices[0] != choices[1] else {
            throw incomplete("\"choices\" must be two different non-empty strings (yes, then no)")
        }
        try JudgeTemplates.checkPlaceholders(
            verification, field: "verification", required: ["criterion"], optional: ["question", "stage"], incomplete)
        guard let raw = file.criteria else { throw incomplete("missing field \"criteria\"") }
        for key in raw.keys.sorted() where JudgeTopic(rawValue: key) == nil {
            throw incomplete(
                "unknown topic \"\(key)\" in \"criteria\" (expected \(JudgeTopic.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var criteria: [JudgeTopic: String] = [:]
        for topic in JudgeTopic.allCases {
            guard let text = raw[topic.rawValue], !text.isEmpty else { throw incomplete("missing criteria for \"\(topic.rawValue)\"") }
            criteria[topic] = text
        }
        self.verification = verification
        self.verdictPrefix = verdictPrefix
        self.choices = choices
        self.criteria = criteria
    }

    /// The user turn that asks about a candidate on `topic`.
    public func renderVerification(topic: JudgeTopic, question: String) -> String {
        Placeholders.render(verification, ["criterion": criteria[topic]!, "question": question, "stage": topic.rawValue])
    }

    /// The file as written, every field optional so that a missing one gets an error naming it.
    private struct File: Decodable {
        var version: Int?
        var verification: String?
        var verdictPrefix: String?
        var choices: [String]?
        var criteria: [String: String]?
    }
}
