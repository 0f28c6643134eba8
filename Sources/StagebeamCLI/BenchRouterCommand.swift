import ArgumentParser
import Cluster
import Foundation
import Logging
import Transport

/// How many messages a coordinator routes per second on this link: several clients ask for its
/// status back to back, and every answered request is two messages through its ROUTER socket.
/// Status is the heaviest small request a coordinator serves (it snapshots workers and jobs), so
/// the figure is a floor for lighter traffic such as heartbeats.
struct BenchRouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-router",
        abstract: "Measure a coordinator's message rate: clients asking for status back to back.")

    @Option(help: "The coordinator's endpoint, e.g. tcp://127.0.0.1:5555.")
    var coordinator: String
    @Option(help: "Concurrent clients, each with its own socket.")
    var clients = 4
    @Option(help: "Seconds to measure.")
    var seconds = 5.0
    @OptionGroup var curve: ClientCurveOptions

    func validate() throws {
        guard clients >= 1, seconds > 0 else { throw ValidationError("--clients must be ≥ 1 and --seconds > 0") }
    }

    func run() async throws {
        let context = try ZMQContext()
        let role = try curve.role()
        let quiet = Logger(label: "client", factory: SwiftLogNoOpLogHandler.init)
        let connected = try (0..<clients).map { _ in try Client(context: context, endpoint: coordinator, curve: role, logger: quiet) }
        defer { for client in connected { client.close() } }
        for client in connected { _ = try await client.status() } // connected and answered once
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        let started = ContinuousClock.now
        let answered = try await withThrowingTaskGroup(of: Int.self) { group in
            for client in connected {
                group.addTask {
                    var count = 0
                    while ContinuousClock.now < deadline {
                        _ = try await client.status()
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        print(
            String(
                format: "%d clients · %d status round trips in %.1f s · %.0f round trips/s · %.0f messages/s routed",
                clients, answered, elapsed, Double(answered) / elapsed, 2 * Double(answered) / elapsed))
    }
}
