import Foundation

/// The judge's wording: a prompt skeleton, a criterion per topic, and the verdict format.
/// Configuration, not code: the built-in set (`JudgeTemplates.builtIn`, from `defaultJudgeTemplatesJSON`)
/// can be replaced by a user file with the same shape (`--judge-templates FILE`).
///
/// File shape (JSON):
/// ```
/// { "version": 1,
///   "labels": ["Response 1", "Response 2"],        // how the prompt names the two candidates
///   "prompt": "… {question} … {hints} … {criterion} … {candidate1} … {candidate2} …",
///   "hint": "The {stage} chosen earlier:\n{text}\n\n",  // one block per hint stage, joined into {hints}
///   "verdictPrefix": "The better response is Response",  // logprob mode: the assistant turn starts so
///   "choices": [" 1", " 2"],                             // logprob mode: scored after the prefix
///   "criteria": { "summary": {"criterion": "…", "hints": []}, "caption": …, "reasoning": …,
///                 "conclusion": …, "answer": … } }
/// ```
/// `prompt` must contain {question}, {criterion}, {candidate1} and {candidate2}, may contain {hints} and
/// {stage}, and must spell both labels (the generate-mode parser looks for them). `hint` must contain
/// {text} and may contain {stage}. A topic's hints are earlier stages whose chosen text the judge sees.
public struct JudgeTemplates: Sendable, Equatable {
    public struct Criterion: Sendable, Equatable {
        public var text: String
        /// Earlier stages whose chosen text is shown to the judge.
        public var hints: [Stage]
    }

    public static let supportedVersion = 1
    static let requiredPromptPlaceholders = ["question", "criterion", "candidate1", "candidate2"]
    static let optionalPromptPlaceholders = ["hints", "stage"]

    public let labels: [String]
    public let prompt: String
    public let hint: String
    public let verdictPrefix: String
    public let choices: [String]
    public let criteria: [JudgeTopic: Criterion]

    /// The templates shipped with stagebeam.
    public static let builtIn: JudgeTemplates = {
        do {
            return try JudgeTemplates(json: Data(defaultJudgeTemplatesJSON.utf8), source: "built-in judge templates")
        } catch {
            preconditionFailure("the built-in judge templates are invalid: \(error)")
        }
    }()

    /// Loads and validates a templates file; errors name the file and what is wrong.
    public init(contentsOf url: URL) throws {
        try self.init(json: Self.readFile(url, kind: "judge templates"), source: url.path)
    }

    /// Parses and validates templates; `source` names them in errors.
    public init(json: Data, source: String) throws {
        let file = try Self.decodeFile(TemplateFile.self, json: json, source: source)
        func incomplete(_ message: String) -> SearchError { SearchError(.templatesIncomplete, "\(source): \(message)") }
        func require<T>(_ value: T?, _ field: String) throws -> T {
            guard let value else { throw incomplete("missing field \"\(field)\"") }
            return value
        }

        let version = try require(file.version, "version")
        guard version == Self.supportedVersion else {
            throw SearchError(.templatesMalformed, "\(source): version \(version) is not supported (expected \(Self.supportedVersion))")
        }
        let labels = try require(file.labels, "labels")
        guard labels.count == 2, labels.allSatisfy({ !$0.isEmpty }), labels[0] != labels[1] else {
            throw incomplete("\"labels\" must be two different non-empty strings")
        }
        let choices = try require(file.choices, "choices")
        guard choices.count == 2, choices.allSatisfy({ !$0.isEmpty }), choices[0] != choices[1] else {
            throw incomplete("\"choices\" must be two different non-empty strings")
        }
        let prompt = try require(file.prompt, "prompt")
        let hint = try require(file.hint, "hint")
        let verdictPrefix = try require(file.verdictPrefix, "verdictPrefix")
        let rawCriteria = try require(file.criteria, "criteria")

        try Self.checkPlaceholders(
            prompt, field: "prompt", required: Self.requiredPromptPlaceholders,
            optional: Self.optionalPromptPlaceholders, incomplete)
        try Self.checkPlaceholders(hint, field: "hint", required: ["text"], optional: ["stage"], incomplete)
        for label in labels where !prompt.contains(label) {
            throw incomplete("\"prompt\" never names the label \"\(label)\", so the judge cannot answer with it")
        }

        for key in rawCriteria.keys.sorted() where JudgeTopic(rawValue: key) == nil {
            throw incomplete(
                "unknown topic \"\(key)\" in \"criteria\" (expected \(JudgeTopic.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var criteria: [JudgeTopic: Criterion] = [:]
        for topic in JudgeTopic.allCases {
            guard let entry = rawCriteria[topic.rawValue] else {
                throw incomplete("missing criteria for \"\(topic.rawValue)\"")
            }
            let text = try require(entry.criterion, "criteria.\(topic.rawValue).criterion")
            guard !text.isEmpty else { throw incomplete("empty criterion for \"\(topic.rawValue)\"") }
            var hints: [Stage] = []
            for name in entry.hints ?? [] {
                guard let stage = Stage(rawValue: name) else {
                    throw incomplete("criteria.\(topic.rawValue).hints: unknown stage \"\(name)\"")
                }
                // Only stages chosen before this topic is judged can be shown; best-of-N chooses none.
                guard topic != .answer, stage < Stage(rawValue: topic.rawValue)! else {
                    throw incomplete("criteria.\(topic.rawValue).hints: \"\(name)\" is not chosen before \(topic.rawValue) is judged")
                }
                hints.append(stage)
            }
            if !hints.isEmpty, !Placeholders.names(in: prompt).contains("hints") {
                throw incomplete("criteria.\(topic.rawValue) has hints but \"prompt\" has no {hints} placeholder")
            }
            criteria[topic] = Criterion(text: text, hints: hints)
        }

        self.labels = labels
        self.prompt = prompt
        self.hint = hint
        self.verdictPrefix = verdictPrefix
        self.choices = choices
        self.criteria = criteria
    }

    public func criterion(for topic: JudgeTopic) -> Criterion {
        criteria[topic]! // init guarantees every topic
    }

    /// The judge's user message for one comparison. `hints` holds the chosen text of earlier stages;
    /// those the topic's criterion names are shown, in its order.
    public func renderPrompt(
        topic: JudgeTopic, question: String, hints: [Stage: String],
        first: String, second: String
    ) -> String {
        let criterion = criterion(for: topic)
        let hintBlocks = criterion.hints.compactMap { stage in
            hints[stage].map { Placeholders.render(hint, ["stage": stage.rawValue, "text": $0]) }
        }
        return Placeholders.render(
            prompt,
            [
                "question": question,
                "criterion": criterion.text,
                "hints": hintBlocks.joined(),
                "stage": topic.rawValue,
                "candidate1": first,
                "candidate2": second
            ])
    }

    static func checkPlaceholders(
        _ template: String, field: String, required: [String], optional: [String],
        _ incomplete: (String) -> SearchError
    ) throws {
        let names = Placeholders.names(in: template)
        for name in required where !names.contains(name) {
            throw incomplete("\"\(field)\" lacks the placeholder {\(name)}")
        }
        for name in names where !required.contains(name) && !optional.contains(name) {
            throw incomplete(
                "\"\(field)\" has an unknown placeholder {\(name)} (allowed: \((required + optional).map { "{\($0)}" }.joined(separator: ", ")))"
            )
        }
    }

    /// A templates file's bytes (judge or reward templates: `kind` names them in the error).
    static func readFile(_ url: URL, kind: String) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw SearchError(.templatesUnreadable, "cannot read \(kind) file \(url.path): \(error.localizedDescription)")
        }
    }

    /// A templates file decoded; `source` names it in errors.
    static func decodeFile<File: Decodable>(_ type: File.Type, json: Data, source: String) throws -> File {
        do {
            return try JSONDecoder().decode(File.self, from: json)
        } catch let error as DecodingError {
            throw SearchError(.templatesMalformed, "\(source): \(describe(error))")
        } catch {
            throw SearchError(.templatesMalformed, "\(source): not valid JSON (\(error.localizedDescription))")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "top level" : "\"\(p)\""
        }
        switch error {
        case .typeMismatch(let type, let context): return "\(path(context)) should be \(type)"
        case .valueNotFound(let type, let context): return "\(path(context)) should be \(type), found null"
        case .keyNotFound(let key, let context): return "\(path(context)) lacks \"\(key.stringValue)\""
        case .dataCorrupted(let context): return "not valid JSON at \(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// The file as written, every field optional so that a missing one gets an error naming it.
private struct TemplateFile: Decodable {
    struct Entry: Decodable {
        var criterion: String?
        var hints: [String]?
    }
    var version: Int?
    var labels: [String]?
    var prompt: String?
    var hint: String?
    var verdictPrefix: String?
    var choices: [String]?
    var criteria: [String: Entry]?
}
