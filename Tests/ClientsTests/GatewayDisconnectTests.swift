import ClusterTestSupport
import Foundation
import Testing

extension GatewayTests {
    /// A non-streamed chat completion whose HTTP client (curl, a separate process) gives up while
    /// the job runs cancels the job: the gateway sees the connection close, closes the job's
    /// client, and the coordinator cancels the job and stops its request on the worker — long
    /// before the job could have finished.
    @Test func aClientThatHangsUpCancelsItsJob() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("w", maxBatch: 8)
        let gateway = try Gateway(coordinator: cluster.endpoint, scratch: scratch)
        // Eight candidates of up to 900 tokens per stage: many seconds of decoding.
        let body = try JSONSerialization.data(withJSONObject: [
            "model": "any", "messages": [["role": "user", "content": "Describe everything you know."]],
            "beam": 8, "max_stage_tokens": 900, "seed": 3
        ])
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = [
            "-s", "--max-time", "1", "-H", "Content-Type: application/json", "--data-binary", String(decoding: body, as: UTF8.self),
            gateway.base + "/v1/chat/completions"
        ]
        try curl.run()
        curl.waitUntilExit()
        #expect(curl.terminationStatus == 28, "curl gave up at its --max-time (exit 28), got \(curl.terminationStatus)")
        let hungUp = Date()
        let finished = try cluster.coordinator.wait("the job to end", timeout: 10) { child in
            child.logged("job finished").first
        }
        let after = Date().timeIntervalSince(hungUp)
        #expect(finished["status"] as? String == "cancelled", "\(finished)")
        #expect((finished["error"] as? String ?? "").contains("disconnected"), "\(finished)")
        #expect(after < 2, "the job ended \(after) s after the client hung up")
        _ = try cluster.workers["w"]!.wait("the worker to stop the job's request", timeout: 5) { child in
            child.logged("work stopped").first
        }
        #expect(gateway.process.logged("HTTP client gone: cancelling its job").count == 1)
    }
}
