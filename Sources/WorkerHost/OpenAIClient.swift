import AsyncHTTPClient
import Cluster
import Foundation
import NIOCore
import NIOHTTP1

/// JSON over HTTP to one inference server (llama.cpp's `llama-server`, vLLM, SGLang), on
/// async-http-client's own event loops: no call blocks a worker's socket thread or Swift's
/// cooperative pool.
///
/// Every failure becomes the cluster's error with the code the coordinator acts on
/// (docs/server-backends.md, "Failures"):
/// - HTTP 429 and 503 (the server is busy or loading): `overloaded`: the coordinator sends the work
///   elsewhere and leaves this worker alone for a while;
/// - the deadline passing: `deadline_exceeded` (the coordinator has already re-dispatched);
/// - a refused or dropped connection, another 5xx, a body that is not the expected JSON:
///   `backend_unavailable`, retried elsewhere;
/// - another 4xx (the server refused what was sent): `backend_rejected`, which fails the request:
///   another worker would send the same.
final class OpenAIClient: Sendable {
    /// The server's root, without a trailing `/v1`.
    let root: String
    private let authorization: String?
    private let http: HTTPClient
    /// Largest response read (a full-vocabulary log-probability list is a few MB).
    static let maxResponseBytes = 256 << 20

    /// `root`: e.g. `http://127.0.0.1:8080` (a trailing `/v1` or `/` is dropped). `connections`: the
    /// most requests sent at once (one per candidate in flight).
    init(root: String, apiKey: String?, connections: Int) throws {
        var root = root
        while root.hasSuffix("/") { root.removeLast() }
        if root.hasSuffix("/v1") { root.removeLast(3) }
        guard let url = URL(string: root), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ClusterError(.invalidArgument, "--backend-url \(root) is not an http:// or https:// URL")
        }
        self.root = root
        authorization = apiKey.map { "Bearer \($0)" }
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(10)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(connections, 1))
        configuration.redirectConfiguration = .disallow
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections (required before the client is released).
    func shutdown() async throws { try await http.shutdown() }

    func get<Response: Decodable>(_ path: String, as type: Response.Type, timeout: Duration) async throws -> Response {
        try await call(path, method: .GET, body: nil, as: type, deadline: .now + timeout)
    }

    func post<Body: Encodable, Response: Decodable>(
        _ path: String, _ body: Body, as type: Response.Type, deadline: ContinuousClock.Instant
    ) async throws -> Response {
        let bytes: Data
        do {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            bytes = try encoder.encode(body)
        } catch {
            throw ClusterError(.internal, "cannot encode the request to \(path): \(error)")
        }
        return try await call(path, method: .POST, body: bytes, as: type, deadline: deadline)
    }

    private func call<Response: Decodable>(
        _ path: String, method: HTTPMethod, body: Data?, as type: Response.Type, deadline: ContinuousClock.Instant
    ) async throws -> Response {
        let (status, bytes) = try await fetch(path, method: method, body: body, deadline: deadline)
        guard status == .ok else { throw Self.statusError(status, body: bytes, what: "\(method) \(root + path)") }
        guard let response = Self.decode(type, bytes) else {
            throw ClusterError(
                .backendUnavailable, "\(method) \(root + path) answered something other than the expected JSON: \(Self.excerpt(bytes))")
        }
        return response
    }

    static func decode<Response: Decodable>(_ type: Response.Type, _ bytes: Data) -> Response? {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try? decoder.decode(type, from: bytes)
    }

    /// The answer's status and body, whatever the status; a failure to get one is a `ClusterError`.
    func fetch(_ path: String, method: HTTPMethod, body: Data? = nil, deadline: ContinuousClock.Instant) async throws -> (
        HTTPResponseStatus, Data
    ) {
        let url = root + path
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let remaining = deadline - .now
        guard remaining > .zero else {
            throw ClusterError(.deadlineExceeded, "\(method) \(url): the request's deadline passed before it was sent")
        }
        return try await Self.within(remaining, what: "\(method) \(url)") { [http, request] in
            let nioDeadline = NIODeadline.now() + .nanoseconds(Int64(milliseconds(remaining) * 1e6))
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, deadline: nioDeadline)
            } catch let error as HTTPClientError where error == .deadlineExceeded {
                throw ClusterError(.deadlineExceeded, "\(method) \(url): no answer by the request's deadline")
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw ClusterError(.backendUnavailable, "\(method) \(url): \(Self.describe(error))")
            }
            do {
                let buffer = try await response.body.collect(upTo: Self.maxResponseBytes)
                return (response.status, Data(buffer.readableBytesView))
            } catch {
                throw ClusterError(.backendUnavailable, "\(method) \(url): the answer broke off: \(Self.describe(error))")
            }
        }
    }

    /// The error for an answer other than 200 OK.
    static func statusError(_ status: HTTPResponseStatus, body: Data, what: String) -> ClusterError {
        let said = "\(what) answered \(status.code) \(status.reasonPhrase): \(excerpt(body))"
        switch status.code {
        case 429, 503: return ClusterError(.overloaded, said)
        case 400 where String(decoding: body, as: UTF8.self).contains("context"):
            // llama-server: "the request exceeds the available context size".
            return ClusterError(.promptTooLong, said)
        case 400..<500: return ClusterError(.backendRejected, said)
        default: return ClusterError(.backendUnavailable, said)
        }
    }

    /// Runs `work`, abandoning it (and cancelling its HTTP request, which closes the connection, so
    /// the server stops the work too) when `limit` passes: a server that sends its head and then
    /// stalls must not hold a request past its deadline.
    private static func within<T: Sendable>(
        _ limit: Duration, what: String, _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await work() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw ClusterError(.deadlineExceeded, "\(what): no answer by the request's deadline")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .remoteConnectionClosed: return "the server closed the connection"
            case .connectTimeout: return "connecting timed out"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }

    /// The start of a body, for error messages.
    static func excerpt(_ body: Data) -> String {
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "(empty body)" : body.count > 300 ? text + "…" : text
    }
}
