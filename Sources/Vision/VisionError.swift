/// An error from decoding or preprocessing an image. The message names what is wrong.
public struct VisionError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// The bytes are not a JPEG or PNG image (or are empty).
        case notAnImage
        /// The header announces a zero width or height.
        case zeroSized
        /// The header announces more pixels than the configured limit.
        case tooLarge
        /// The image is cut short or its data is corrupt.
        case corrupt
        /// A processor configuration file is missing, malformed or asks for something unsupported.
        case badProcessorConfig
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
