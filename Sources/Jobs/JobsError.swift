/// An error of the bulk-job and load-test tools: a code callers can match on and a message naming
/// the problem (the file, line or option at fault).
public struct JobsError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// The input file cannot be read as a whole (unreadable, a broken JSON array).
        case badInput = "bad_input"
        /// The output file exists but holds something other than this tool's result lines.
        case badOutput = "bad_output"
        /// Reading or writing a file failed.
        case io
        /// An `--slo` specification that cannot be parsed.
        case badSLO = "bad_slo"
        case invalidArgument = "invalid_argument"
        /// An evaluation item could not be run (its image, its search); the message names the item.
        case itemFailed = "item_failed"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
