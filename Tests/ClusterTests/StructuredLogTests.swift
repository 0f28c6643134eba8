import ClusterTestSupport
import Foundation
import Testing

extension ClusterProcessTests {
    /// The coordinator and a worker with `--log-format json` (the level from `$STAGEBEAM_LOG_LEVEL`)
    /// run a job with a known id: every line either writes is a JSON object with `ts`, `level`,
    /// `component` and `msg`; the job's lines carry its `job_id`, the worker's its `worker_id`.
    @Test func coordinatorAndWorkerLogJSONLinesNamingTheJobAndTheWorker() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch, environment: ["STAGEBEAM_LOG_LEVEL": "debug"])
        let worker = try cluster.addWorker("logging-worker", maxBatch: 4)
        let submitted = try cluster.submit(TestJob(), jobID: "logged-job")
        #expect(submitted["status"] as? String == "succeeded")
        worker.signal(SIGTERM)
        #expect(try worker.exitStatus() == 0)
        cluster.coordinator.signal(SIGTERM)
        #expect(try cluster.coordinator.exitStatus() == 0)

        for (process, component) in [(cluster.coordinator!, "coordinator"), (worker, "worker")] {
            let lines = process.stderr.split(separator: "\n")
            #expect(lines.count == process.logs.count, "every line of \(process.name) is a JSON object:\n\(process.stderr.suffix(2000))")
            for line in process.logs {
                let time = line["ts"] as? String ?? ""
                #expect(time.count == 24 && time.hasSuffix("Z") && ISO8601DateFormatter.milliseconds.date(from: time) != nil, "\(line)")
                #expect(
                    ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(line["level"] as? String ?? ""), "\(line)"
                )
                #expect(line["component"] as? String == component, "\(line)")
                #expect(!(line["msg"] as? String ?? "").isEmpty, "\(line)")
            }
        }

        let coordinator = cluster.coordinator!
        let accepted = coordinator.logged("job accepted", ["job_id": "logged-job"])
        #expect(accepted.count == 1 && accepted.first?["beam"] as? Int == TestJob().beam && accepted.first?["method"] as? String == "stage")
        let finished = coordinator.logged("job finished", ["job_id": "logged-job"])
        #expect(finished.count == 1 && finished.first?["status"] as? String == "succeeded" && finished.first?["seconds"] is Double)
        // Debug (from the environment): each stage's requests and candidates, by job, stage and worker.
        #expect(
            coordinator.logged("stage started", ["job_id": "logged-job"]).map { $0["stage"] as? String ?? "" }
                == ["summary", "caption", "reasoning", "conclusion"])
        #expect(coordinator.logged("candidates gathered", ["job_id": "logged-job", "workers": "logging-worker"]).count == 4)
        #expect(!coordinator.logged("request sent", ["job_id": "logged-job", "kind": "judge", "worker_id": "logging-worker"]).isEmpty)
        #expect(coordinator.logged("worker registered", ["worker_id": "logging-worker", "credits": "4"]).count == 1)
        #expect(coordinator.logged("worker lost", ["worker_id": "logging-worker", "reason": "disconnected"]).count == 1)

        #expect(worker.logs.allSatisfy { $0["worker_id"] as? String == "logging-worker" })
        #expect(worker.logged("registered").count == 1)
        let done = worker.logged("work done", ["job_id": "logged-job", "kind": "generate"])
        #expect(done.map { $0["stage"] as? String ?? "" } == ["summary", "caption", "reasoning", "conclusion"])
        #expect(done.allSatisfy { $0["n"] as? Int == TestJob().beam && ($0["tokens"] as? Int ?? 0) > 0 })
    }

    /// Without options or environment a coordinator logs text lines; a bad `$STAGEBEAM_LOG_LEVEL`
    /// is refused by name before anything starts.
    @Test func textLogsByDefaultAndBadEnvironmentIsRefused() throws {
        let scratch = try Scratch()
        let arguments = ["coordinator", "--bind", "tcp://127.0.0.1:*", "--journal", scratch.path("journal.jsonl")]
        let coordinator = try ChildProcess(
            arguments, name: "coordinator-text", in: scratch,
            environment: ["STAGEBEAM_LOG_FORMAT": "", "STAGEBEAM_LOG_LEVEL": ""])
        try coordinator.wait("the listening line") { $0.stdout.contains("listening") ? true : nil }
        coordinator.signal(SIGTERM)
        #expect(try coordinator.exitStatus() == 0)
        let lines = coordinator.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(lines)")
        #expect(lines.first?.contains(" info coordinator: started endpoint=tcp://127.0.0.1:") == true, "\(lines)")
        #expect(lines.last?.hasSuffix(" notice coordinator: stopping signal=15") == true, "\(lines)")
        #expect(lines.allSatisfy { ISO8601DateFormatter.milliseconds.date(from: String($0.prefix(24))) != nil }, "\(lines)")

        let (status, _, err) = try runStagebeam(
            arguments, in: scratch, name: "coordinator-bad-level", environment: ["STAGEBEAM_LOG_LEVEL": "loud"])
        #expect(status != 0)
        #expect(
            err.contains("$STAGEBEAM_LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical, got 'loud'"), "\(err)")
    }
}

extension ISO8601DateFormatter {
    /// 2026-11-27T18:00:00.123Z
    static var milliseconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
