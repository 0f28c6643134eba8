import ChatTemplates
import JSON

/// Every failure of the Tokenization module: a stable code callers can switch on, and a message that
/// names the problem (the file, the JSON key, the template line and column).
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A file could not be read.
        public static let unreadableFile = Code(rawValue: "unreadable_file")
        /// The file is not valid JSON, or a key has the wrong type.
        public static let malformedJSON = Code(rawValue: "malformed_json")
        /// A tokenizer.json component (model, normalizer, pre-tokenizer, pattern, post-processor, decoder)
        /// this module does not implement.
        public static let unsupportedComponent = Code(rawValue: "unsupported_component")
        /// The vocabulary, merges or added tokens contradict each other.
        public static let inconsistentVocabulary = Code(rawValue: "inconsistent_vocabulary")
        /// A chat template could not be parsed, or uses a construct outside the supported Jinja subset.
        public static let templateSyntax = Code(rawValue: "template_syntax")
        /// A chat template failed while rendering (wrong types, undefined values used, unknown functions).
        public static let templateRuntime = Code(rawValue: "template_runtime")
        /// The template itself refused the conversation through `raise_exception(...)`.
        public static let templateException = Code(rawValue: "template_exception")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

extension TokenizerError {
    /// A model's chat template that failed to parse, reported among the tokenizer's own errors.
    init(templateError: ChatTemplateError) {
        let code: Code =
            switch templateError.code {
            case .runtime: .templateRuntime
            case .exception: .templateException
            case .unreadableFile: .unreadableFile
            default: .templateSyntax
            }
        self.init(code, templateError.message)
    }
}

extension TokenizerError {
    /// Runs `body`, reporting a JSON file that cannot be read or holds the wrong types as this
    /// module's error (the message, which names the file and key, unchanged).
    static func reading<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as JSONError {
            throw TokenizerError(error.code == .unreadableFile ? .unreadableFile : .malformedJSON, error.message)
        }
    }
}
