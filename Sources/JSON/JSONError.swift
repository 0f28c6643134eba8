/// A JSON file or value that could not be read as asked. The message names the file and the key path
/// ("tokenizer.json: model.vocab"), so callers wrap it in their own error type unchanged.
public struct JSONError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// The file could not be read.
        case unreadableFile = "unreadable_file"
        /// The bytes are not JSON, or not the object expected at the top level.
        case malformed
        /// A key is missing, or holds a value of another type than asked for.
        case wrongType = "wrong_type"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
