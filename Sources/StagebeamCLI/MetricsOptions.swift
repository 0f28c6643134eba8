import ArgumentParser
import Cluster

/// `--metrics-port` / `--metrics-host`: serve Prometheus metrics over HTTP (coordinator and worker).
struct MetricsOptions: ParsableArguments {
    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port).")
    var metricsPort: Int?
    @Option(name: .customLong("metrics-host"), help: "IPv4 address the metrics server listens on (0.0.0.0: every interface).")
    var metricsHost = "127.0.0.1"

    func validate() throws {
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be 0…65535") }
    }

    /// Starts the server when a port was given, and says where it listens; `ready` answers `/ready`.
    func serve(_ metrics: Metrics, ready: @escaping @Sendable () -> Bool = { true }) throws -> MetricsServer? {
        guard let metricsPort else { return nil }
        let server = try MetricsServer(metrics: metrics, host: metricsHost, port: metricsPort, ready: ready)
        announce("metrics on http://\(metricsHost):\(server.port)/metrics")
        return server
    }
}
