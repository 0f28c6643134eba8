/// Errors of generation requests; the message names the offending input.
public struct GenerationError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case invalidParameter
        case promptTooLong
        case emptyPrompt
        case cacheFull
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
