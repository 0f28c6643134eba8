/// Every failure of a chat template: a stable code callers can switch on, and a message that names
/// the problem (the file, the template's line and column).
public struct ChatTemplateError: Error, CustomStringConvertible, Sendable {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The template file could not be read.
        public static let unreadableFile = Code(rawValue: "unreadable_file")
        /// The template could not be parsed, or uses a construct outside the supported Jinja subset.
        public static let syntax = Code(rawValue: "template_syntax")
        /// The template failed while rendering (wrong types, undefined values used, unknown functions).
        public static let runtime = Code(rawValue: "template_runtime")
        /// The template itself refused the conversation through `raise_exception(...)`.
        public static let exception = Code(rawValue: "template_exception")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
