/// An error from reading a checkpoint or its configuration. The message always names the
/// file and, where there is one, the tensor or key at fault.
public struct ModelFormatError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case fileNotFound, malformedHeader, unknownDType, unsupportedDType, truncatedFile
        case shapeMismatch, missingTensor, unexpectedTensors, badConfig, unsupportedArchitecture
        /// A file being written (`GGUFWriter`) could not be created or written.
        case unwritableFile
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
