import Logging
import Wire

/// An error of the cluster: the protocol's own error code (so it can be sent to a peer as is), a
/// message naming the problem, and the job/request it concerns.
public struct ClusterError: Error, CustomStringConvertible, Sendable {
    public let code: Stagebeam_V1_ErrorCode
    public let message: String
    public var requestID: String
    public var jobID: String

    public init(_ code: Stagebeam_V1_ErrorCode, _ message: String, requestID: String = "", jobID: String = "") {
        self.code = code
        self.message = message
        self.requestID = requestID
        self.jobID = jobID
    }

    /// An `Error` received from a peer.
    public init(_ error: Stagebeam_V1_Error) {
        self.init(error.code, error.message, requestID: error.requestID, jobID: error.jobID)
    }

    public var description: String { "\(Self.name(code)): \(message)" }

    /// As log metadata: `error_code`, `error` (the message), and the job and request it names.
    public var logMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = ["error_code": "\(Self.name(code))", "error": "\(message)"]
        if !jobID.isEmpty { metadata["job_id"] = "\(jobID)" }
        if !requestID.isEmpty { metadata["request_id"] = "\(requestID)" }
        return metadata
    }

    public var wire: Stagebeam_V1_Error {
        var error = Stagebeam_V1_Error()
        error.code = code
        error.message = message
        error.requestID = requestID
        error.jobID = jobID
        return error
    }

    /// Whether another worker may succeed where this one failed (the request is re-dispatched);
    /// otherwise the request itself is at fault and the job fails with this error.
    public var isRetryable: Bool {
        switch code {
        case .overloaded, .workerLost, .deadlineExceeded, .imageNotCached, .internal, .backendUnavailable, .kvCacheTooSmall: true
        default: false
        }
    }

    /// The code as the .proto spells it without its prefix, e.g. "prompt_too_long".
    public static func name(_ code: Stagebeam_V1_ErrorCode) -> String {
        switch code {
        case .unspecified: "unspecified"
        case .malformedFrame: "malformed_frame"
        case .versionMismatch: "version_mismatch"
        case .unknownMessage: "unknown_message"
        case .messageTooLarge: "message_too_large"
        case .imageTooLarge: "image_too_large"
        case .badImage: "bad_image"
        case .imageNotCached: "image_not_cached"
        case .promptTooLong: "prompt_too_long"
        case .invalidArgument: "invalid_argument"
        case .unknownJob: "unknown_job"
        case .overloaded: "overloaded"
        case .workerLost: "worker_lost"
        case .noWorker: "no_worker"
        case .modelMismatch: "model_mismatch"
        case .deadlineExceeded: "deadline_exceeded"
        case .cancelled: "cancelled"
        case .unexpectedMessage: "unexpected_message"
        case .internal: "internal"
        case .backendUnavailable: "backend_unavailable"
        case .backendRejected: "backend_rejected"
        case .kvCacheTooSmall: "kv_cache_too_small"
        case .UNRECOGNIZED(let value): "code_\(value)"
        }
    }
}
