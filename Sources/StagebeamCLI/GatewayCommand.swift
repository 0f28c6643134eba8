import ArgumentParser
import Foundation
import Gateway
import Logging
import Transport

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Serve an OpenAI-compatible HTTP API (POST /v1/chat/completions, GET /v1/models) in front of a coordinator.")

    @Option(help: "The coordinator's endpoint, e.g. tcp://127.0.0.1:5555.")
    var coordinator: String
    @Option(help: "HOST:PORT to listen on (a bare PORT listens on 127.0.0.1; port 0 = any free port).")
    var listen = "127.0.0.1:8000"
    @Option(
        name: .customLong("api-keys-file"),
        help: "A file of accepted bearer tokens, one per line (# comments); without it, no authentication.")
    var apiKeysFile: String?
    @Option(
        name: .customLong("image-dir"),
        help: "A directory image_url may name files under (absolute paths or file:// URLs); without it, data URLs only.")
    var imageDir: String?
    @OptionGroup var curve: ClientCurveOptions
    @OptionGroup var logging: LogOptions

    /// `listen` as a host and a port.
    var address: (host: String, port: Int) {
        get throws {
            let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
            let host = parts.count > 1 ? parts.dropLast().joined(separator: ":") : "127.0.0.1"
            guard let port = Int(parts.last ?? ""), (0...65535).contains(port), !host.isEmpty else {
                throw ValidationError("--listen must be HOST:PORT or PORT, got \"\(listen)\"")
            }
            return (host, port)
        }
    }

    func validate() throws {
        _ = try address
    }

    func run() async throws {
        try logging.bootstrap()
        let termination = TerminationSignals()
        let logger = Logger(label: "gateway")
        var apiKeys: Set<String>?
        if let apiKeysFile {
            let text: String
            do {
                text = try String(contentsOfFile: apiKeysFile, encoding: .utf8)
            } catch {
                throw ValidationError("--api-keys-file \(apiKeysFile) cannot be read")
            }
            let keys = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            guard !keys.isEmpty else { throw ValidationError("--api-keys-file \(apiKeysFile) holds no key") }
            apiKeys = Set(keys)
        }
        let (host, port) = try address
        let server = GatewayServer(
            configuration: .init(
                coordinator: coordinator, host: host, port: port, apiKeys: apiKeys,
                imageDirectory: imageDir.map { URL(fileURLWithPath: $0, isDirectory: true) }, curve: try curve.role()),
            context: try ZMQContext(), logger: logger)
        let serving = Task {
            try await server.run { bound in
                announce("gateway listening on http://\(host):\(bound) · coordinator \(coordinator)")
                logger.info("started", metadata: ["listen": "\(host):\(bound)", "coordinator": "\(coordinator)"])
            }
        }
        let signal = await termination.first()
        logger.notice("stopping", metadata: ["signal": .stringConvertible(signal)])
        serving.cancel()
        _ = await serving.result
    }
}
