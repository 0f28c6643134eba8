/// Why a frame could not be turned into a message (or a message into a frame).
///
/// The code is the protocol's own `ErrorCode`, so a receiver can answer the sender with
/// `errorMessage(requestID:jobID:)` and keep serving everyone else.
public struct WireError: Error, CustomStringConvertible, Sendable {
    public let code: Stagebeam_V1_ErrorCode
    public let message: String
    /// The decoder's own error, when there is one.
    public let underlying: (any Error & Sendable)?

    public init(_ code: Stagebeam_V1_ErrorCode, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        let cause = underlying.map { " (\($0))" } ?? ""
        return "\(code): \(message)\(cause)"
    }

    /// The `Error` message to send back to the peer whose frame failed.
    public func errorMessage(requestID: String = "", jobID: String = "") -> Stagebeam_V1_Error {
        var error = Stagebeam_V1_Error()
        error.code = code
        error.message = message
        error.requestID = requestID
        error.jobID = jobID
        return error
    }
}
