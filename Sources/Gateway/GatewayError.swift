import Cluster
import Foundation
import Hummingbird
import Wire

/// An error as the OpenAI API reports one: an HTTP status and `{"error": {"message", "type", "code"}}`.
public struct GatewayError: Error, CustomStringConvertible, Sendable {
    public let status: HTTPResponse.Status
    public let type: String
    public let code: String
    public let message: String

    public init(_ status: HTTPResponse.Status, type: String = "invalid_request_error", code: String, _ message: String) {
        self.status = status
        self.type = type
        self.code = code
        self.message = message
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    static func badRequest(_ message: String, code: String = "invalid_request") -> GatewayError {
        GatewayError(.badRequest, code: code, message)
    }

    /// A coordinator's error (refused job, failed job) as the HTTP client sees it: the request's own
    /// faults are 400, a cluster without capacity 429 or 503, the rest 500 (the message names the code).
    init(_ error: ClusterError) {
        let name = ClusterError.name(error.code)
        switch error.code {
        case .invalidArgument, .badImage, .imageTooLarge, .promptTooLong, .messageTooLarge, .kvCacheTooSmall:
            self.init(.badRequest, code: name, error.message)
        case .overloaded:
            self.init(.tooManyRequests, type: "overloaded_error", code: name, error.message)
        case .noWorker, .workerLost, .deadlineExceeded:
            self.init(.serviceUnavailable, type: "overloaded_error", code: name, error.message)
        default:
            self.init(.internalServerError, type: "server_error", code: name, error.message)
        }
    }

    var json: [String: Any] { ["error": ["message": message, "type": type, "code": code]] }

    var response: Response {
        var response = jsonResponse(json)
        response.status = status
        if status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
        return response
    }
}

/// `object` as a JSON response body (keys sorted, slashes unescaped).
func jsonResponse(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
    Response(
        status: status, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: jsonBytes(object))))
}

func jsonBytes(_ object: [String: Any]) -> Data {
    // Only dictionaries of strings, numbers, booleans and arrays are passed here, which always serialize.
    (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
}
