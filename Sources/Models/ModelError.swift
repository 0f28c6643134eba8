/// Errors of model construction and execution. The message names what is wrong.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case unsupportedConfiguration
        case contextOverflow
        case cacheFull
        case tokenOutOfRange
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
