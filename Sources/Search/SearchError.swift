/// An error from the search: a stable code, a message naming the problem, and the cause when there is one.
/// Codes are values of an open struct so new ones do not break callers that switch on them.
public struct SearchError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A search option is out of range (beam, token budget, sampling values, …).
        public static let invalidConfiguration = Code(rawValue: "invalid_configuration")
        /// A method with more than one candidate per unit was started without a judge.
        public static let judgeMissing = Code(rawValue: "judge_missing")
        /// The judge templates file cannot be read.
        public static let templatesUnreadable = Code(rawValue: "templates_unreadable")
        /// The judge templates file is not valid JSON of the expected shape.
        public static let templatesMalformed = Code(rawValue: "templates_malformed")
        /// The judge templates file lacks a stage, a field or a placeholder, or has an unknown one.
        public static let templatesIncomplete = Code(rawValue: "templates_incomplete")
        /// A generator answered with something that breaks its contract (wrong candidate count, negative tokens).
        public static let generatorContract = Code(rawValue: "generator_contract")
        /// A reward-scored method was started without a scorer.
        public static let scorerMissing = Code(rawValue: "scorer_missing")
        /// A scorer answered with the wrong number of scores.
        public static let scorerContract = Code(rawValue: "scorer_contract")
        /// A judge answered in the wrong verdict mode.
        public static let judgeContract = Code(rawValue: "judge_contract")
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        if let underlying { return "\(code): \(message) (\(underlying))" }
        return "\(code): \(message)"
    }
}
