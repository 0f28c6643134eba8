import Cluster
import Foundation
import Hummingbird
import Logging
import NIOCore
import Search
import Transport
import Wire

/// The OpenAI-compatible HTTP API in front of a coordinator: `POST /v1/chat/completions` runs one
/// job per request (its answer, all four tagged stages, is the message content) and `GET /v1/models`
/// lists the model the cluster's workers serve.
public struct GatewayServer: Sendable {
    public struct Configuration: Sendable {
        public var coordinator: String
        public var host: String
        /// 0: any free port (`run` reports the one bound).
        public var port: Int
        /// Bearer tokens accepted; nil: no authentication.
        public var apiKeys: Set<String>?
        /// Where `image_url` may name local files; nil: data URLs only.
        public var imageDirectory: URL?
        public var curve: CurveRole?
        /// How long `/v1/models` waits for the coordinator's status.
        public var statusTimeout: Duration = .seconds(10)

        public init(
            coordinator: String, host: String = "127.0.0.1", port: Int, apiKeys: Set<String>? = nil, imageDirectory: URL? = nil,
            curve: CurveRole? = nil
        ) {
            (self.coordinator, self.host, self.port, self.apiKeys) = (coordinator, host, port, apiKeys)
            (self.imageDirectory, self.curve) = (imageDirectory, curve)
        }
    }

    /// Request bodies above this are refused (a data URL of a large photo fits).
    static let maxBodyBytes = 32 << 20

    let configuration: Configuration
    let context: ZMQContext
    let logger: Logger

    public init(configuration: Configuration, context: ZMQContext, logger: Logger = Logger(label: "gateway")) {
        self.configuration = configuration
        self.context = context
        self.logger = logger
    }

    /// Serves until cancelled; `onListening` gets the bound port once the server accepts connections.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router(context: GatewayRequestContext.self)
        router.get("/v1/models") { request, _ in
            if let refusal = authorize(request) { return refusal.response }
            return await models()
        }
        router.post("/v1/chat/completions") { request, context in
            if let refusal = authorize(request) { return refusal.response }
            return await chatCompletion(request, connection: context.channel)
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "stagebeam-gateway"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
        try await app.runService(gracefulShutdownSignals: [])
    }

    /// nil when the request may proceed.
    private func authorize(_ request: Request) -> GatewayError? {
        guard let keys = configuration.apiKeys else { return nil }
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix("Bearer "), keys.contains(String(header.dropFirst("Bearer ".count))) else {
            return GatewayError(
                .unauthorized, code: "invalid_api_key",
                header.isEmpty
                    ? "missing bearer token (Authorization: Bearer <key>)" : "the bearer token is not one of the gateway's API keys")
        }
        return nil
    }

    // MARK: Models

    private func models() async -> Response {
        do {
            let names = try await servedModels()
            let data = names.map { ["id": $0, "object": "model", "created": 0, "owned_by": "stagebeam"] as [String: Any] }
            return jsonResponse(["object": "list", "data": data])
        } catch let error as GatewayError {
            return error.response
        } catch {
            return GatewayError(.internalServerError, type: "server_error", code: "internal", "\(error)").response
        }
    }

    /// The model names of the coordinator's live workers.
    private func servedModels() async throws -> [String] {
        let client = try Client(context: context, endpoint: configuration.coordinator, curve: configuration.curve, logger: logger)
        defer { client.close() }
        let reply = try await withDeadline(configuration.statusTimeout) { try await client.status() }
        guard let reply else {
            throw GatewayError(
                .serviceUnavailable, type: "overloaded_error", code: "coordinator_unreachable",
                "no status from the coordinator \(configuration.coordinator) within \(configuration.statusTimeout)")
        }
        return Array(Set(reply.workers.map(\.modelName))).sorted()
    }

    // MARK: Chat completions

    /// `connection`: the request's; its job is cancelled when the client leaves it.
    private func chatCompletion(_ request: Request, connection: any Channel) async -> Response {
        do {
            let body = try await request.body.collect(upTo: Self.maxBodyBytes)
            let chat = try ChatRequest(body: Data(body.readableBytesView), imageDirectory: configuration.imageDirectory)
            let served = try await servedModels()
            // Any name is accepted when the cluster serves one model (or none yet: the job then fails as no_worker).
            if served.count > 1, !served.contains(chat.model) {
                throw GatewayError(
                    .notFound, code: "model_not_found",
                    "model \"\(chat.model)\" is not served here; GET /v1/models lists \(served.joined(separator: ", "))")
            }
            let model = served.count == 1 ? served[0] : chat.model
            let job = try JobRun(
                submit: chat.submit,
                client: Client(context: context, endpoint: configuration.coordinator, curve: configuration.curve, logger: logger))
            try await watch(connection, for: job)
            // The first thing the job reports decides the HTTP status: a refusal is an error response.
            let first = await job.next()
            if case .finished(.failure(let error)) = first { throw error }
            if chat.stream {
                return streamed(
                    job, first: first, model: model, stagesStream: StageText.streamsStages(chat.submit.method),
                    includeUsage: chat.streamUsage)
            }
            var outcome = first
            while case .event = outcome { outcome = await job.next() }
            switch outcome {
            case .finished(.success(let result)): return jsonResponse(try Completion(result: result, model: model).json)
            case .finished(.failure(let error)): throw error
            default: throw GatewayError.internalError("the job ended without a result")
            }
        } catch let error as GatewayError {
            return error.response
        } catch let error as ClusterError {
            return GatewayError(error).response
        } catch {
            if let tooLarge = error as? any HTTPResponseError, tooLarge.status == .contentTooLarge {
                return GatewayError(.contentTooLarge, code: "request_too_large", "the request body is over \(Self.maxBodyBytes >> 20) MiB")
                    .response
            }
            logger.error("chat completion failed", metadata: ["error": "\(error)"])
            return GatewayError(.internalServerError, type: "server_error", code: "internal", "\(error)").response
        }
    }

    /// Cancels `job` when the client's side of `connection` closes, until the job's end (a kept-alive
    /// connection carries later requests).
    private func watch(_ connection: any Channel, for job: JobRun) async throws {
        let logger = logger
        let watcher = ClientGoneHandler { [weak job] in
            guard let job, !job.isFinished else { return }
            logger.info("HTTP client gone: cancelling its job", metadata: ["job_id": "\(job.jobID)"])
            job.cancel()
        }
        try await connection.pipeline.addHandler(watcher, position: .first).get()
        job.onFinished { connection.pipeline.removeHandler(watcher, promise: nil) }
    }

    /// Server-sent `chat.completion.chunk` events: a role chunk, then each stage's chosen text as it
    /// is decided, then whatever of the final answer was not streamed yet, the finish chunk, and `[DONE]`.
    private func streamed(_ job: JobRun, first: JobRun.Item?, model: String, stagesStream: Bool, includeUsage: Bool) -> Response {
        let logger = logger
        let body = ResponseBody { writer in
            let chunks = ChunkWriter(id: "chatcmpl-\(job.jobID)", model: model)
            try await writer.write(chunks.event(delta: ["role": "assistant", "content": ""]))
            var streamed = ""
            var item = first
            // The client went away (a write failed): stop waiting, which cancels the job.
            defer { job.cancel() }
            while let current = item {
                switch current {
                case .event(let event):
                    if stagesStream, let piece = StageText.piece(for: event, after: streamed) {
                        streamed += piece
                        try await writer.write(chunks.event(delta: ["content": piece]))
                    }
                case .finished(.success(let result)):
                    do {
                        let completion = try Completion(result: result, model: model)
                        let content = completion.content
                        if !content.hasPrefix(streamed) {
                            logger.warning("streamed stages differ from the final answer", metadata: ["job_id": "\(result.jobID)"])
                        }
                        let rest = content.hasPrefix(streamed) ? String(content.dropFirst(streamed.count)) : ""
                        if !rest.isEmpty { try await writer.write(chunks.event(delta: ["content": rest])) }
                        try await writer.write(chunks.event(delta: [:], finishReason: "stop"))
                        if includeUsage { try await writer.write(chunks.event(usage: completion.usage)) }
                    } catch let error as GatewayError {
                        try await writer.write(ChunkWriter.data(error.json))
                    }
                case .finished(.failure(let error)):
                    let failure = (error as? GatewayError) ?? (error as? ClusterError).map(GatewayError.init) ?? .internalError("\(error)")
                    try await writer.write(ChunkWriter.data(failure.json))
                }
                item = await job.next()
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}

extension GatewayError {
    static func internalError(_ message: String) -> GatewayError {
        GatewayError(.internalServerError, type: "server_error", code: "internal", message)
    }
}

/// `work`'s value, or nil when `timeout` passes first (`work` is then cancelled).
func withDeadline<T: Sendable>(_ timeout: Duration, _ work: @escaping @Sendable () async throws -> T) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await work() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
