import ClusterTestSupport
import Foundation
import Testing

extension ClusterProcessTests {
    /// With CURVE keys configured, the coordinator serves the workers and clients whose public keys
    /// it lists and nobody else: an unlisted worker never registers, a client without keys gets no
    /// answer, and a listed client's job runs on the listed worker.
    @Test func curveAdmitsOnlyAuthorizedKeys() throws {
        let scratch = try Scratch()
        func keygen(_ name: String) throws -> String {
            let (status, out, err) = try runStagebeam(["keygen", "--output", scratch.path(name)], in: scratch, name: "keygen-\(name)")
            #expect(status == 0, "\(err)")
            return out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let coordinatorKey = try keygen("coordinator")
        let workerKey = try keygen("worker"), clientKey = try keygen("client")
        _ = try keygen("stranger")
        try "# workers and clients\n\(workerKey)\n\(clientKey)\n".write(
            toFile: scratch.path("authorized"), atomically: true, encoding: .utf8)
        #expect(FileManager.default.fileExists(atPath: scratch.path("coordinator.secret")))

        let cluster = try LocalCluster(scratch: scratch)
        cluster.coordinator.signal(SIGKILL)
        try cluster.startCoordinator(
            endpoint: "tcp://127.0.0.1:*",
            extra: [
                "--curve-secret-key-file", scratch.path("coordinator.secret"), "--authorized-keys", scratch.path("authorized")
            ])
        func keys(_ name: String) -> [String] {
            // `=`: a Z85 key may begin with "-", which would read as an option.
            ["--curve-server-key=\(coordinatorKey)", "--curve-secret-key-file", scratch.path("\(name).secret")]
        }
        try cluster.addWorker("listed", maxBatch: 4, extra: keys("worker"))
        try cluster.addWorker("unlisted", maxBatch: 4, extra: keys("stranger"), waitForRegistration: false)

        let job = ["submit", "--coordinator", cluster.endpoint, "--json", "--record-search"] + TestJob().arguments
        let (status, out, err) = try runStagebeam(job + keys("client"), in: scratch, name: "submit-listed")
        #expect(status == 0, "\(err.suffix(2000))")
        let result = try parseJSON(out)
        #expect(result["status"] as? String == "succeeded")
        #expect(candidateWorkers(result) == ["listed"], "the unlisted worker never took work")
        #expect(cluster.registrations(of: "unlisted") == 0)
        #expect(
            cluster.coordinator.logged("connection refused").contains { ($0["error"] as? String)?.hasSuffix("is not authorized") == true })

        let (plainStatus, _, _) = try runStagebeam(
            ["status", "--coordinator", cluster.endpoint, "--timeout-s", "1"],
            in: scratch, name: "status-plain")
        #expect(plainStatus != 0, "a client without keys gets no answer")

        // Refused clients and workers are told what the silence may mean, instead of waiting on.
        let submit = ["submit", "--coordinator", cluster.endpoint, "--connect-timeout-s", "1"] + TestJob().arguments
        let (keyless, _, keylessErr) = try runStagebeam(submit, in: scratch, name: "submit-keyless")
        #expect(keyless != 0 && keylessErr.contains("requires CURVE keys"), "\(keylessErr)")
        let (stranger, _, strangerErr) = try runStagebeam(submit + keys("stranger"), in: scratch, name: "submit-stranger")
        #expect(stranger != 0 && strangerErr.contains("refused this client's CURVE keys"), "\(strangerErr)")
        try cluster.workers["unlisted"]!.wait("the unlisted worker to say why it waits") { child in
            child.logged("no answer from the coordinator, retrying").first
        }
    }

    /// A client whose CURVE handshake fails never reaches the coordinator's socket (libzmq drops the
    /// connection), yet the coordinator logs it: the endpoint it came in on and what failed, one line
    /// per reason per interval although a refused client reconnects every fraction of a second.
    @Test func failedCurveHandshakesAreLogged() throws {
        let scratch = try Scratch()
        func keygen(_ name: String) throws -> String {
            let (status, out, err) = try runStagebeam(["keygen", "--output", scratch.path(name)], in: scratch, name: "keygen-\(name)")
            #expect(status == 0, "\(err)")
            return out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        _ = try keygen("coordinator")
        let clientKey = try keygen("client")
        try "\(clientKey)\n".write(toFile: scratch.path("authorized"), atomically: true, encoding: .utf8)
        let coordinator = try ChildProcess(
            [
                "coordinator", "--bind", "tcp://127.0.0.1:*", "--journal", scratch.path("journal.jsonl"), "--log-format", "json",
                "--curve-secret-key-file", scratch.path("coordinator.secret"), "--authorized-keys", scratch.path("authorized")
            ],
            name: "coordinator", in: scratch)
        defer { coordinator.signal(SIGKILL) }
        let endpoint = try coordinator.wait("the listening line") { child in
            child.stdout.split(separator: " ").first { $0.hasPrefix("tcp://") }.map(String.init)
        }
        func failures(_ reason: String) -> [[String: Any]] {
            coordinator.logged("handshake failed").filter { ($0["error"] as? String)?.contains(reason) == true }
        }

        // No keys: the client offers ZeroMQ's NULL mechanism to a CURVE server.
        let (keyless, _, _) = try runStagebeam(
            ["status", "--coordinator", endpoint, "--timeout-s", "1"], in: scratch, name: "status-keyless")
        #expect(keyless != 0)
        // Which side notices the mismatch first is a race: the server (a protocol error) or the client,
        // which hangs up, so that the server sees the connection closed mid-handshake.
        let keylessReasons = ["security mechanism", "closed the connection during the handshake"]
        let mismatch = try coordinator.wait("the keyless client's failed handshake") { _ in
            keylessReasons.lazy.compactMap { failures($0).first }.first
        }
        #expect(mismatch["endpoint"] as? String == endpoint, "\(mismatch)")
        #expect(["handshake_failed_protocol", "handshake_failed_no_detail"].contains(mismatch["event"] as? String ?? ""), "\(mismatch)")

        // An authorized client key, but the server key is not the coordinator's: HELLO does not decrypt.
        // (`=`: a Z85 key may begin with "-", which would read as an option.)
        let (wrongServer, _, _) = try runStagebeam(
            [
                "status", "--coordinator", endpoint, "--timeout-s", "1", "--curve-server-key=\(clientKey)",
                "--curve-secret-key-file", scratch.path("client.secret")
            ], in: scratch, name: "status-wrong-server-key")
        #expect(wrongServer != 0)
        let undecrypted = try coordinator.wait("the wrong server key's failed handshake") { _ in failures("did not decrypt").first }
        #expect(undecrypted["endpoint"] as? String == endpoint, "\(undecrypted)")

        // The keyless client retried within its second; one line per interval (10 s) says so.
        for reason in keylessReasons { #expect(failures(reason).count <= 1, "\(failures(reason))") }
    }
}
