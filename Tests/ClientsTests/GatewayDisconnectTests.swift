import ClusterTestSupport
import Foundation
import Testing

extension GatewayTests {
    /// A non-streamed chat completion whose HTTP client (curl, a separate process) gives up while
    /// the job runs cancels the job: the gateway sees the connection close, closes the job's
    /// client, and the coordinator cancels the job and stops its request on the worker. The worker
    /// is frozen (SIGSTOP) before the request, so the job is certainly still running when curl
    /// gives up, however fast the machine; a liveness of 60 s keeps the frozen worker registered.
    @Test func aClientThatHangsUpCancelsItsJob() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch, liveness: 600)
        let worker = try cluster.addWorker("w", maxBatch: 8)
        let gateway = try Gateway(coordinator: cluster.endpoint, scratch: scratch)
        let body = try JSONSerialization.data(withJSONObject: [
            "model": "any", "messages": [["role": "user", "content": "Describe everything you know."]],
            "beam": 2, "max_stage_tokens": 64, "seed": 3
        ])
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = [
            "-s", "--max-time", "1", "-H", "Content-Type: application/json", "--data-binary", String(decoding: body, as: UTF8.self),
            gateway.base + "/v1/chat/completions"
        ]
        worker.signal(SIGSTOP)
        try curl.run()
        curl.waitUntilExit()
        #expect(curl.terminationStatus == 28, "curl gave up at its --max-time (exit 28), got \(curl.terminationStatus)")
        let hungUp = Date()
        let finished = try cluster.coordinator.wait("the job to end", timeout: 10) { child in
            child.logged("job finished").first
        }
        let after = Date().timeIntervalSince(hungUp)
        worker.signal(SIGCONT)
        #expect(finished["status"] as? String == "cancelled", "\(finished)")
        #expect((finished["error"] as? String ?? "").contains("disconnected"), "\(finished)")
        #expect(after < 2, "the job ended \(after) s after the client hung up")
        _ = try worker.wait("the worker to stop the job's request", timeout: 10) { child in
            child.logged("work stopped").first
        }
        #expect(gateway.process.logged("HTTP client gone: cancelling its job").count == 1)
    }
}
