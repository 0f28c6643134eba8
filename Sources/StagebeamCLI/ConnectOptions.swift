import ArgumentParser
import Cluster
import Foundation
import Jobs
import Transport

/// How long a client waits for a coordinator to answer at all before it gives up with a reason.
struct ConnectOptions: ParsableArguments {
    @Option(
        name: .customLong("connect-timeout-s"),
        help: "Give up when the coordinator does not answer within this many seconds of starting (not reachable, or CURVE keys refused).")
    var connectTimeoutS = 5.0

    func validate() throws {
        if !(connectTimeoutS > 0) { throw ValidationError("--connect-timeout-s must be > 0") }
    }

    /// Asks the coordinator at `endpoint` for its status: a client that cannot reach it (nothing
    /// listening, or a coordinator that refuses its CURVE keys without a word, as ZeroMQ does) hears
    /// why now instead of waiting on a job forever.
    func check(_ endpoint: String, curve: CurveRole?) async throws {
        let client = try Client(context: ZMQContext(), endpoint: endpoint, curve: curve)
        defer { client.close() }
        let answer = try await withTimeout(.milliseconds(Int64(connectTimeoutS * 1000))) { try await client.status() }
        guard answer == nil else { return }
        throw ConnectError(description: Self.silence(from: endpoint, within: connectTimeoutS, curve: curve))
    }

    /// What no answer from a coordinator may mean.
    static func silence(from endpoint: String, within seconds: Double, curve: CurveRole?) -> String {
        let hint =
            curve == nil
            ? "no coordinator is listening there, or it requires CURVE keys (--curve-server-key, --curve-secret-key-file)"
            : "no coordinator is listening there, or it refused this client's CURVE keys "
                + "(is this client's public key in its --authorized-keys, and --curve-server-key its public key?)"
        return "no answer from \(endpoint) within \(seconds) s: \(hint)"
    }
}

struct ConnectError: Error, CustomStringConvertible {
    let description: String
}
