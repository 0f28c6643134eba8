import Cluster
import ClusterTestSupport
import Foundation
import Search
import Testing
import Transport
import Wire

/// The cluster as users run it: a coordinator and workers as separate `stagebeam` processes on
/// loopback, driven through the CLI and the wire. One test at a time: they share two busy cores,
/// and liveness timing must not depend on what the other tests are doing.
@Suite(.serialized) struct ClusterProcessTests {
    /// Two generate workers with 2 credits each and a judge worker. The answer equals
    /// `stagebeam run`'s; the 4 candidates of each stage are split 2 + 2 and no worker is ever sent
    /// more than its 2 credits.
    @Test func clusterAnswerEqualsInProcessRunAndRespectsCredits() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        let genA = try cluster.addWorker("gen-a", maxBatch: 2, roles: "generate")
        let genB = try cluster.addWorker("gen-b", maxBatch: 2, roles: "generate")
        try cluster.addWorker("judge", maxBatch: 4, roles: "judge")
        let job = TestJob()

        let submitted = try cluster.submit(job)
        #expect(submitted["status"] as? String == "succeeded")
        let inProcess = try job.runInProcess(in: scratch)
        #expect(try SearchOutcome(submitted: submitted) == SearchOutcome(record: inProcess))
        #expect(submitted["answer"] as? String == inProcess["answer"] as? String)
        #expect(candidateWorkers(submitted) == ["gen-a", "gen-b"])

        // Credits, as the workers saw them and as the coordinator reports them.
        let sizes = generateSizes(genA) + generateSizes(genB)
        #expect(sizes.count == 8, "4 stages × 2 workers")
        #expect(sizes.allSatisfy { $0 == 2 }, "\(sizes)")
        let status = try parseJSON(runStagebeam(["status", "--coordinator", cluster.endpoint, "--json"], in: scratch, name: "status").1)
        let workers = status["workers"] as? [[String: Any]] ?? []
        #expect(workers.count == 3)
        for worker in workers {
            let largest = worker["largestRequestSequences"] as? Int ?? 0
            let credits = worker["maxBatchSequences"] as? Int ?? 0
            #expect(largest >= 1 && largest <= credits, "\(worker)")
        }
    }

    /// A worker serving a quantized GGUF file (tokenizer, chat template and weights from the one
    /// file) gives the answer `stagebeam run` gives on the same file.
    @Test func ggufWorkerAnswersAsTheInProcessRun() throws {
        try expectWorkerAnswersAsTheInProcessRun(model: Repo.gguf("llama-q4_k_m"), scratch: Scratch())
    }

    /// A worker serving a Llama 3.2 Vision checkpoint quantized into a directory (`stagebeam
    /// quantize`, run as a process) answers as `stagebeam run` on that directory, a question about an
    /// image and a text-only one.
    @Test func quantizedVisionWorkerAnswersAsTheInProcessRun() throws {
        let scratch = try Scratch()
        let model = scratch.path("mllama-q8_0")
        let source = Repo.root.appendingPathComponent("Tests/Fixtures/mllama/mllama-quantized").path
        let (status, _, err) = try runStagebeam(
            ["quantize", "--model", source, "--type", "Q8_0", "--output", model], in: scratch, name: "quantize")
        #expect(status == 0, "\(err)")
        let image = Repo.root.appendingPathComponent("Tests/Fixtures/mllama/images/wide.png").path
        try expectWorkerAnswersAsTheInProcessRun(model: model, scratch: scratch, image: image)
        try expectWorkerAnswersAsTheInProcessRun(model: model, scratch: scratch)
    }

    /// One worker serving `model` answers a beam-2 job (about `image`, if given) as `stagebeam run`
    /// does in process.
    private func expectWorkerAnswersAsTheInProcessRun(model: String, scratch: Scratch, image: String? = nil) throws {
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("worker", maxBatch: 4, model: model)
        let job = TestJob(beam: 2, image: image)
        let submitted = try cluster.submit(job)
        #expect(submitted["status"] as? String == "succeeded")
        let inProcess = try job.runInProcess(in: scratch, model: model)
        #expect(try SearchOutcome(submitted: submitted) == SearchOutcome(record: inProcess))
        #expect(submitted["answer"] as? String == inProcess["answer"] as? String)
    }

    /// A job that searches two stages and writes the others greedily: on the cluster (submitted by
    /// `stagebeam submit --search-stages`) the same record as `run` in one process.
    @Test func searchedStagesAnswerAsTheInProcessRun() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("worker", maxBatch: 4)
        let job = TestJob(searchStages: [.caption, .reasoning])
        let submitted = try cluster.submit(job)
        #expect(submitted["status"] as? String == "succeeded")
        let inProcess = try job.runInProcess(in: scratch)
        let outcome = try SearchOutcome(submitted: submitted)
        #expect(try outcome == SearchOutcome(record: inProcess))
        // A stage's entry: its winner, then one line per candidate.
        #expect(outcome.stages.map(\.count) == [2, 5, 5, 2])
        #expect((submitted["settings"] as? [String: Any])?["search_stages"] as? [String] == ["caption", "reasoning"])
    }

    /// One worker or three give the same answer. With three workers of 1 credit each, a stage's
    /// 4 candidates go out 1 + 1 + 1 and the fourth waits for the first credit to come back.
    @Test func oneWorkerAndThreeWorkersGiveTheSameAnswer() throws {
        let scratch = try Scratch()
        let job = TestJob(question: "Which is heavier, a kilo of feathers or a kilo of iron?", seed: 3)

        let single = try LocalCluster(scratch: scratch)
        try single.addWorker("solo", maxBatch: 8)
        let one = try single.submit(job)

        let triple = try LocalCluster(scratch: Scratch())
        for id in ["w1", "w2", "w3"] { try triple.addWorker(id, maxBatch: 1) }
        let three = try triple.submit(job)

        #expect(candidateWorkers(one) == ["solo"])
        #expect(candidateWorkers(three) == ["w1", "w2", "w3"])
        #expect(try SearchOutcome(submitted: one) == SearchOutcome(submitted: three))
        for id in ["w1", "w2", "w3"] {
            #expect(generateSizes(triple.workers[id]!).allSatisfy { $0 == 1 })
        }

        // The text form streams the job's progress as it comes, then prints the answer.
        let (status, out, err) = try runStagebeam(
            ["submit", "--coordinator", triple.endpoint] + job.arguments, in: scratch, name: "submit-text")
        #expect(status == 0)
        for line in ["▸ summary", "▸ conclusion", "4 reasoning candidates from w1, w2, w3", "match:", "conclusion winner: candidate"] {
            #expect(err.contains(line), "\(line) in\n\(err)")
        }
        #expect(out.contains("answer: \(one["answer"] as? String ?? "?")"))
    }

    /// Several jobs at once share the workers' credits; each gets the answer it gets alone.
    @Test func concurrentJobsInterleaveAndEachGetsItsOwnAnswer() async throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("a", maxBatch: 2)
        try cluster.addWorker("b", maxBatch: 2)
        let jobs = (0..<3).map { TestJob(question: "Question number \($0)?", seed: 100 + $0) }
        let references = try jobs.map { try SearchOutcome(record: $0.runInProcess(in: scratch)) }

        let endpoint = cluster.endpoint
        let results = try await withThrowingTaskGroup(of: (Int, Stagebeam_V1_JobResult).self) { group in
            for (i, job) in jobs.enumerated() {
                group.addTask {
                    let client = try Client(context: ZMQContext(), endpoint: endpoint)
                    defer { client.close() }
                    return (i, try await client.submit(job.submitJob(id: "concurrent-\(i)")))
                }
            }
            var results: [Int: Stagebeam_V1_JobResult] = [:]
            for try await (i, result) in group { results[i] = result }
            return results
        }
        for (i, reference) in references.enumerated() {
            let result = try #require(results[i])
            #expect(result.status == .succeeded)
            let record = try parseJSON(String(decoding: result.searchRecordJson, as: UTF8.self))
            #expect(try SearchOutcome(record: record) == reference)
        }
    }

    /// SIGKILL a generate worker holding a share of a stage: the job finishes with the answer of
    /// an undisturbed run, and the re-dispatch shows in the result and in status.
    ///
    /// The tiny model decodes a share in milliseconds, too fast to kill a worker in the middle of one
    /// by timing. So the victim is frozen (SIGSTOP) before the job is submitted: the coordinator, which
    /// still believes it alive, sends it its share, which then certainly is in flight when the victim
    /// is killed. The coordinator notices the silence and sends that share to the other worker.
    @Test func killedWorkersShareIsRedispatchedWithTheSameAnswer() async throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch, liveness: 10)
        let victim = try cluster.addWorker("victim", maxBatch: 2, roles: "generate")
        try cluster.addWorker("survivor", maxBatch: 2, roles: "generate")
        try cluster.addWorker("judge", maxBatch: 4, roles: "judge")
        let job = TestJob(question: "What colour is the sky at noon?", seed: 11)
        let reference = try SearchOutcome(record: job.runInProcess(in: scratch))

        let client = try Client(context: ZMQContext(), endpoint: cluster.endpoint)
        defer { client.close() }
        let submit = job.submitJob(id: "kill-test")

        victim.signal(SIGSTOP)
        async let finished = client.submit(submit)
        // The victim's share is sent as soon as the job starts; give it a moment to leave.
        try await Task.sleep(for: .milliseconds(150))
        victim.signal(SIGKILL)
        let result = try await finished

        #expect(result.status == .succeeded, "\(result.error)")
        let record = try parseJSON(String(decoding: result.searchRecordJson, as: UTF8.self))
        #expect(try SearchOutcome(record: record) == reference)
        #expect(result.counts.redispatchedRequests >= 1)
        #expect(victim.logged("work done").isEmpty, "the frozen victim never answered")
        #expect(!cluster.coordinator.logged("worker lost", ["worker_id": "victim", "reason": "missed_heartbeats"]).isEmpty)
        let status = try await client.status()
        #expect(status.redispatchedRequests >= 1)
        #expect(status.workers.map(\.workerID).sorted() == ["judge", "survivor"])
        #expect(status.jobs.first { $0.jobID == "kill-test" }?.redispatchedRequests ?? 0 >= 1)
    }

    /// A worker that stays alive but does not answer in time: its generate share and its judge call
    /// go to the other workers at the request deadline, long before liveness would give up on it;
    /// its late answers, once it wakes, are ignored and its credits come back. A worker stopped with
    /// SIGTERM says goodbye and is dropped at once.
    @Test func requestsPastTheirDeadlineGoElsewhere() async throws {
        let scratch = try Scratch()
        // Liveness of 60 s (600 heartbeats of 100 ms): the stopped workers must outlive the job even on a
        // loaded machine, where the job takes longer than the 10 s a smaller limit gave them.
        let cluster = try LocalCluster(scratch: scratch, liveness: 600, requestTimeoutS: 0.4)
        let slowGenerator = try cluster.addWorker("gen-slow", maxBatch: 2, roles: "generate")
        try cluster.addWorker("gen-ok", maxBatch: 2, roles: "generate")
        let slowJudge = try cluster.addWorker("judge-slow", maxBatch: 1, roles: "judge")
        let judge = try cluster.addWorker("judge-ok", maxBatch: 1, roles: "judge")
        let job = TestJob(question: "Is a tomato a fruit?", seed: 21)

        slowGenerator.signal(SIGSTOP)
        slowJudge.signal(SIGSTOP)
        let submitted = try cluster.submit(job)
        #expect(try SearchOutcome(submitted: submitted) == SearchOutcome(record: job.runInProcess(in: scratch)))
        let counts = submitted["counts"] as? [String: Any]
        #expect(counts?["redispatched_requests"] as? Int ?? 0 >= 2, "a generate share and a judge call")
        #expect(cluster.coordinator.logged("request re-dispatched", ["reason": "deadline_exceeded"]).count >= 2)

        slowGenerator.signal(SIGCONT)
        slowJudge.signal(SIGCONT)
        try cluster.coordinator.wait("the late answers to be ignored") {
            $0.logged("late answer ignored").count >= 2 ? true : nil
        }
        let client = try Client(context: ZMQContext(), endpoint: cluster.endpoint)
        defer { client.close() }
        let status = try await client.status()
        #expect(status.workers.count == 4)
        #expect(status.workers.allSatisfy { $0.inFlightSequences == 0 && $0.creditsAvailable == $0.maxBatchSequences })

        judge.signal(SIGTERM)
        #expect(try judge.exitStatus() == 0)
        try cluster.coordinator.wait("the goodbye") {
            $0.logged("worker lost", ["worker_id": "judge-ok", "reason": "disconnected"]).isEmpty ? nil : true
        }
    }

    /// The journal: a finished job is answered from it after a SIGKILL and restart (with no
    /// worker connected, so it cannot have been computed again), and a job whose coordinator was
    /// killed mid-flight is run again after the restart, to the same answer, for the client that
    /// was waiting all along.
    @Test func restartedCoordinatorAnswersFromItsJournalAndReRunsUnfinishedJobs() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        let workerA = try cluster.addWorker("a", maxBatch: 4)
        let workerB = try cluster.addWorker("b", maxBatch: 4)
        let job = TestJob(question: "Why is the sea salty?", seed: 5)
        let first = try cluster.submit(job, jobID: "journaled")
        let endpoint = cluster.endpoint

        // Kill everything, restart the coordinator alone on the same journal and endpoint.
        cluster.coordinator.signal(SIGKILL)
        _ = try cluster.coordinator.exitStatus()
        workerA.signal(SIGKILL)
        workerB.signal(SIGKILL)
        try cluster.startCoordinator(endpoint: endpoint)
        let again = try cluster.submit(job, jobID: "journaled")
        #expect(try SearchOutcome(submitted: again) == SearchOutcome(submitted: first))
        #expect(again["total_ms"] as? Double == first["total_ms"] as? Double, "the journaled result itself")
        #expect(cluster.coordinator.logged("job accepted", ["job_id": "journaled"]).isEmpty)
        // The same id with another question is refused, and the coordinator keeps serving.
        var other = job
        other.question = "Something else?"
        let (status, _, err) = try runStagebeam(
            ["submit", "--coordinator", endpoint, "--job-id", "journaled"] + other.arguments,
            in: scratch, name: "submit-other")
        #expect(status != 0)
        #expect(err.contains("invalid_argument") && err.contains("already names a different job"), "\(err)")

        // A job in flight when its coordinator dies: the workers are frozen before it is submitted,
        // so that its first requests are in flight and it cannot finish before the kill.
        let c = try cluster.addWorker("c", maxBatch: 4)
        let d = try cluster.addWorker("d", maxBatch: 4)
        c.signal(SIGSTOP)
        d.signal(SIGSTOP)
        let midJob = TestJob(question: "How do birds fly?", seed: 9)
        let waiting = try ChildProcess(
            ["submit", "--coordinator", endpoint, "--json", "--record-search", "--job-id", "mid-flight"] + midJob.arguments,
            name: "submit-mid", in: scratch)
        try cluster.coordinator.wait("the job to be accepted") { $0.logged("job accepted", ["job_id": "mid-flight"]).isEmpty ? nil : true }
        usleep(100_000)
        let journalBefore = try String(contentsOfFile: cluster.journal, encoding: .utf8)
        #expect(journalBefore.contains("\"event\":\"accepted\",\"job_id\":\"mid-flight\""))
        cluster.coordinator.signal(SIGKILL)
        _ = try cluster.coordinator.exitStatus()
        let interrupted = !journalBefore.contains("\"event\":\"finished\",\"job_id\":\"mid-flight\"")
        try cluster.startCoordinator(endpoint: endpoint)
        c.signal(SIGCONT)
        d.signal(SIGCONT)
        #expect(try waiting.exitStatus() == 0, "\(waiting.stderr.suffix(2000))")
        let midResult = try parseJSON(waiting.stdout)
        #expect(try SearchOutcome(submitted: midResult) == SearchOutcome(record: midJob.runInProcess(in: scratch)))
        #expect(interrupted, "the job must have been unfinished when its coordinator was killed")
        #expect(!cluster.coordinator.logged("journal replayed", ["unfinished": "1"]).isEmpty)
        let journal = try String(contentsOfFile: cluster.journal, encoding: .utf8)
        #expect(journal.components(separatedBy: "\"event\":\"finished\",\"job_id\":\"mid-flight\"").count - 1 == 1)
    }

    /// A coordinator killed after a job's first stages: restarted on its journal, it takes those
    /// stages' answers from the journal instead of recomputing them, and finishes the job with the
    /// answer of an undisturbed run, for the client that waited through the restart.
    @Test func restartedJobDoesNotRedoFinishedStages() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        let a = try cluster.addWorker("a", maxBatch: 6)
        let b = try cluster.addWorker("b", maxBatch: 6)
        let job = TestJob(question: "What makes rain?", beam: 6, maxStageTokens: 24, seed: 13)
        let reference = try job.runInProcess(in: scratch)
        try cluster.restartCoordinatorMidJob(
            "resumed", arguments: job.arguments, pausing: [a, b], answer: reference["answer"] as? String, scratch: scratch,
            minimumSteps: 2 + 5, "summary and caption: one generate and five judge calls each, at least")
        #expect(try SearchOutcome(submitted: cluster.submit(job, jobID: "resumed")) == SearchOutcome(record: reference))
    }
}

extension LocalCluster {
    /// Submits a job as `id` from a client that waits, and once the job's reasoning stage has
    /// started, pauses `workers`, SIGKILLs the coordinator, restarts it on its journal and lets the
    /// workers go on. Expects the job unfinished at the kill with at least `minimumSteps` journaled
    /// steps (`why`), the waiting client to get `answer`, and the restarted coordinator to take at
    /// least those steps' answers from the journal.
    func restartCoordinatorMidJob(
        _ id: String, arguments: [String], pausing workers: [ChildProcess], answer: String?, scratch: Scratch,
        minimumSteps: Int, _ why: Comment
    ) throws {
        let waiting = try ChildProcess(
            ["submit", "--coordinator", endpoint, "--job-id", id] + arguments, name: "submit-\(id)", in: scratch)
        try waiting.wait("the reasoning stage to start") { $0.stderr.contains("▸ reasoning") ? true : nil }
        for worker in workers { worker.signal(SIGSTOP) }
        let journal = try String(contentsOfFile: self.journal, encoding: .utf8)
        let stepsBefore = journal.components(separatedBy: "\"event\":\"step\",\"job_id\":\"\(id)\"").count - 1
        #expect(!journal.contains("\"event\":\"finished\",\"job_id\":\"\(id)\""), "the job must be unfinished at the kill")
        #expect(stepsBefore >= minimumSteps, why)
        coordinator.signal(SIGKILL)
        _ = try coordinator.exitStatus()
        try startCoordinator(endpoint: endpoint)
        for worker in workers { worker.signal(SIGCONT) }

        #expect(try waiting.exitStatus() == 0, "\(waiting.stderr.suffix(2000))")
        #expect(waiting.stdout.contains("answer: \(answer ?? "?")"))
        let reused = try coordinator.wait("the job to finish") { child -> Int? in
            child.logged("answers reused from the journal", ["job_id": id]).first?["answers"] as? Int
        }
        #expect(reused >= stepsBefore)
    }
}
