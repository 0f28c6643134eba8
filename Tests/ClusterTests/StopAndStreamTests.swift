import Cluster
import ClusterTestSupport
import Foundation
import Testing
import Transport
import Wire

extension ClusterProcessTests {
    /// A job cancelled while its worker decodes a long stage frees the worker at once: the
    /// coordinator sends StopRequests, the worker stops at its next token and answers `cancelled`,
    /// and the next job's candidates are being generated within a second of the cancel, while most
    /// of the long stage was still to come. The long stage is 64 summary candidates on a worker of
    /// 32 credits, two requests one after another. The first streamed text comes 50 ms into a
    /// request (the smallest text interval) or at its end, so a request must outlast that: 16 of the
    /// fixture model's summaries (EOS after a few dozen to a few hundred tokens) decoded in 46 ms
    /// once draws ran across the pool, and the cancel then met a request not yet started; 32 at a
    /// time take about twice as long (their worst case, 32 × 900 tokens, needs the larger KV cache).
    /// The worker is frozen (SIGSTOP) from the first text until the cancel is answered, so the
    /// request that sent it is still decoding when the cancel reaches the worker.
    @Test func cancelStopsTheWorkersDecoding() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch, coordinatorArguments: ["--max-running-jobs", "1"])
        let worker = try cluster.addWorker("w", maxBatch: 32, extra: ["--kv-capacity", "32768"])
        let context = try ZMQContext()
        let client = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "stopper")

        var long = TestJob(question: "Describe everything.", beam: 64, maxStageTokens: 900).submitJob(id: "long")
        long.streamEvents = true
        long.streamCandidateText = true
        long.candidateTextIntervalMs = 50
        try client.send(.submitJob(long))
        _ = try client.next("the long job's first text") { body -> Bool? in
            if case .jobEvent(let event) = body, event.jobID == "long", event.candidateText.tokenCount > 0 { return true }
            return nil
        }
        worker.signal(SIGSTOP)
        var next = TestJob(question: "And then?", beam: 2, maxStageTokens: 8).submitJob(id: "next")
        next.streamEvents = true
        next.streamCandidateText = true
        next.candidateTextIntervalMs = 50
        try client.send(.submitJob(next))
        _ = try client.accepted("next")

        let cancelled = ContinuousClock.now
        let result = try #require(try client.cancel("long").result)
        worker.signal(SIGCONT)
        #expect(result.status == .cancelled)
        _ = try client.next("the next job's first text", timeout: .seconds(30)) { body -> Bool? in
            if case .jobEvent(let event) = body, event.jobID == "next", case .candidateText = event.kind { return true }
            return nil
        }
        let freedAfter = ContinuousClock.now - cancelled
        let stopped = try worker.wait("the worker to stop the long job's decoding") { child in
            child.logged("work stopped", ["job_id": "long", "kind": "generate"]).first
        }
        let tokens = try #require(stopped["tokens"] as? Int, "\(stopped)")
        #expect(tokens < 32 * 900, "the request ran to its end")
        #expect(freedAfter < .seconds(1), "the next job started \(freedAfter) after the cancel")
        // At most half the stage's candidates were made: the other requests were work the cancel
        // spared the worker.
        #expect(result.counts.candidates <= 32, "the long stage was nearly done: \(result.counts.candidates) candidates")
        #expect(try client.result(of: "next", timeout: .seconds(60)).status == .succeeded)
        #expect(cluster.coordinator.logged("worker error").isEmpty, "a stopped request is not a worker error")
    }

    /// A job whose client asks for the candidates' text gets it in pieces that concatenate to each
    /// candidate's text as generated (the search record's raw text), all of attempt 1; the answer is
    /// the same as the same job's without text (streaming never changes the tokens). Its counts
    /// hold the tokens its generate-mode judges wrote, as many as the same search's judges write in
    /// one process.
    @Test func candidateTextStreamsWithoutChangingTheAnswer() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("w", maxBatch: 4)
        let context = try ZMQContext()
        let client = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "watcher")

        let job = TestJob(question: "What is in the picture?", beam: 2, maxStageTokens: 32, judgeMode: "generate", judgeMaxTokens: 16)
        var streamed = job.submitJob(id: "streamed")
        streamed.streamEvents = true
        streamed.streamCandidateText = true
        streamed.candidateTextIntervalMs = 1 // raised to the coordinator's smallest interval
        try client.send(.submitJob(streamed))
        let result = try client.result(of: "streamed")
        #expect(result.status == .succeeded, "\(result.error)")
        var texts: [String: String] = [:]
        var pieces = 0
        for case .jobEvent(let event) in client.skipped {
            guard case .candidateText(let text) = event.kind else { continue }
            #expect(text.attempt == 1 && event.stage != .unspecified)
            texts["\(event.step)/\(text.index)", default: ""] += text.text
            pieces += 1
        }
        let record = try #require(try JSONSerialization.jsonObject(with: result.searchRecordJson) as? [String: Any])
        var raw: [String: String] = [:]
        func collect(_ value: Any, unit: Int?) {
            if let object = value as? [String: Any] {
                let unit = (object["unit"] as? Int) ?? unit
                if let text = object["raw_text"] as? String, let index = object["index"] as? Int, let unit {
                    raw["\(unit)/\(index)"] = text
                }
                for child in object.values { collect(child, unit: unit) }
            } else if let array = value as? [Any] {
                for child in array { collect(child, unit: unit) }
            }
        }
        collect(record, unit: nil)
        #expect(raw.count == 4 * 2, "\(raw.keys.sorted())")
        #expect(texts == raw.filter { !$0.value.isEmpty }, "streamed \(pieces) pieces")

        try client.send(.submitJob(job.submitJob(id: "plain")))
        let unstreamed = try client.result(of: "plain")
        #expect(unstreamed.answer == result.answer && unstreamed.stages.map(\.text) == result.stages.map(\.text))

        // Judge tokens: each generate-mode call's, as `stagebeam run` records them.
        var judgeTokens = 0
        func sumJudgeTokens(_ value: Any) {
            if let object = value as? [String: Any] {
                if object["verdict"] != nil, let cost = object["cost"] as? [String: Any], let compute = cost["compute"] as? [String: Any] {
                    judgeTokens += compute["generated_tokens"] as? Int ?? 0
                }
                for child in object.values { sumJudgeTokens(child) }
            } else if let array = value as? [Any] {
                for child in array { sumJudgeTokens(child) }
            }
        }
        sumJudgeTokens(try job.runInProcess(in: scratch))
        #expect(judgeTokens > 0 && result.counts.judgeGeneratedTokens == UInt64(judgeTokens), "\(result.counts)")
    }
}

extension ClusterProcessTests {
    /// Candidate text follows its candidate across a re-dispatch: a worker's pieces reach the client
    /// as attempt 1 under the step's candidate index; when that worker leaves, the candidate goes
    /// to another worker and its pieces come as attempt 2, while the first worker's late pieces are
    /// dropped. Cancelling the job then sends the second worker StopRequests naming its request.
    @Test func candidateTextAttemptsGrowWithRedispatch() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch, liveness: 200)
        let context = try ZMQContext()
        let first = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "held-1")
        try first.register(workerID: "held-1", credits: 4)
        try cluster.coordinator.wait("the first worker to register") { _ in cluster.registrations(of: "held-1") > 0 ? true : nil }
        let client = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "text-watcher")

        var job = TestJob(beam: 2).submitJob(id: "redispatched-text")
        job.streamEvents = true
        job.streamCandidateText = true
        try client.send(.submitJob(job))
        let request = try first.generateRequest()
        #expect(request.progressIntervalMs == 250 && request.n == 2, "\(request)")

        func progress(_ request: Stagebeam_V1_GenerateRequest, candidate: UInt32, _ text: String) -> Stagebeam_V1_Envelope.OneOf_Body {
            var piece = Stagebeam_V1_CandidateProgress()
            piece.index = candidate
            piece.text = text
            piece.tokenCount = 2
            var progress = Stagebeam_V1_GenerateProgress()
            progress.requestID = request.requestID
            progress.jobID = request.jobID
            progress.candidates = [piece]
            return .generateProgress(progress)
        }
        func nextText() throws -> (Stagebeam_V1_JobEvent, Stagebeam_V1_CandidateText) {
            try client.next("candidate text") { body in
                if case .jobEvent(let event) = body, case .candidateText(let text) = event.kind { return (event, text) }
                return nil
            }
        }
        try first.send(progress(request, candidate: 1, "Hel"))
        let (event, text) = try nextText()
        #expect(event.stage == .summary && event.step == 0 && text.index == 1 && text.attempt == 1 && text.text == "Hel", "\(event)")

        // The first worker leaves; the candidates go to the second, and the first's late text is dropped.
        let second = try SchemaPeer(context: context, endpoint: cluster.endpoint, id: "held-2")
        try second.register(workerID: "held-2", credits: 4)
        try cluster.coordinator.wait("the second worker to register") { _ in cluster.registrations(of: "held-2") > 0 ? true : nil }
        try first.send(.disconnect(Stagebeam_V1_Disconnect()))
        let again = try second.generateRequest()
        #expect(again.seeds == request.seeds && again.requestID != request.requestID)
        try first.send(progress(request, candidate: 1, "late"))
        try second.send(progress(again, candidate: 1, "Lo"))
        let (_, retried) = try nextText()
        #expect(retried.index == 1 && retried.attempt == 2 && retried.text == "Lo", "\(retried)")

        #expect(try client.cancel("redispatched-text").result?.status == .cancelled)
        let stop = try second.next("the stop of the request") { body -> Stagebeam_V1_StopRequests? in
            if case .stopRequests(let stop) = body { return stop }
            return nil
        }
        #expect(stop.requestIds == [again.requestID] && stop.jobID == "redispatched-text")
        let texts = client.skipped.compactMap { body -> String? in
            if case .jobEvent(let event) = body, case .candidateText(let text) = event.kind { return text.text }
            return nil
        }
        #expect(!texts.contains("late"), "\(texts)")
    }
}
