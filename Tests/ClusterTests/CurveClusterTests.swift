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
}
