import Foundation
import Wire

/// One fully populated message of every envelope body type (every field set to a non-default
/// value, so a round trip that lost a field would show).
enum Samples {
    static var image: Stagebeam_V1_ImageRef {
        var image = Stagebeam_V1_ImageRef()
        image.data = Data((0..<300).map { UInt8($0 % 256) })
        image.sha256 = ContentHash.sha256Hex(image.data)
        return image
    }

    static var sampling: Stagebeam_V1_Sampling {
        var sampling = Stagebeam_V1_Sampling()
        sampling.temperature = 0.6
        sampling.topP = 0.9
        sampling.topK = 40
        sampling.minP = 0.05
        sampling.repetitionPenalty = 1.1
        return sampling
    }

    static var error: Stagebeam_V1_Error {
        var error = Stagebeam_V1_Error()
        error.code = .promptTooLong
        error.message = "prompt is 9000 tokens; the model's context is 8192"
        error.requestID = "r-7"
        error.jobID = "job-1"
        return error
    }

    static var all: [Stagebeam_V1_Envelope.OneOf_Body] {
        var ready = Stagebeam_V1_Ready()
        ready.protocolVersion = EnvelopeCodec.protocolVersion
        ready.workerID = "worker-ä1"
        ready.modelName = "tiny-llava"
        ready.modelHash = ContentHash.sha256Hex(Array("weights".utf8))
        ready.roles = [.generate, .judge]
        ready.maxBatchSequences = 8
        ready.contextTokens = 4096
        ready.imageCache.capacityImages = 16
        ready.imageCache.cachedSha256 = [image.sha256]
        ready.softwareVersion = "stagebeam test"

        var heartbeat = Stagebeam_V1_Heartbeat()
        heartbeat.sequence = 42
        heartbeat.creditsAvailable = 3
        heartbeat.inFlightSequences = 5
        heartbeat.inFlightRequestIds = ["r-1", "r-2"]

        var disconnect = Stagebeam_V1_Disconnect()
        disconnect.reason = "SIGTERM"

        var generate = Stagebeam_V1_GenerateRequest()
        generate.requestID = "r-1"
        generate.jobID = "job-1"
        generate.deadlineMs = 30_000
        generate.question = "How many apples?"
        generate.image = image
        generate.assistantPrefix = "<SUMMARY>"
        generate.n = 3
        generate.seeds = [1, UInt64.max, 0x1234_5678_9abc]
        generate.sampling = sampling
        generate.stop = ["</SUMMARY>"]
        generate.maxNewTokens = 256
        generate.stage = .summary
        generate.firstCandidateIndex = 2

        var candidate = Stagebeam_V1_GeneratedCandidate()
        candidate.text = "I will count the apples.</SUMMARY>"
        candidate.tokenCount = 9
        candidate.cumulativeLogprob = -4.25
        candidate.finishReason = .stop
        candidate.seed = 1
        candidate.decodeMs = 81.5
        var generated = Stagebeam_V1_GenerateResult()
        generated.requestID = "r-1"
        generated.jobID = "job-1"
        generated.candidates = [candidate, candidate]
        generated.candidates[1].finishReason = .length
        generated.promptTokens = 120
        generated.reusedPrefixTokens = 100
        generated.prefillMs = 40
        generated.decodeMs = 90
        generated.workerID = "worker-ä1"

        var judge = Stagebeam_V1_JudgeRequest()
        judge.requestID = "r-2"
        judge.jobID = "job-1"
        judge.deadlineMs = 10_000
        judge.stage = .reasoning
        judge.question = "How many apples?"
        judge.image = image
        judge.hints.caption = "Three red apples on a table."
        judge.hints.reasoning = "1 + 1 + 1 = 3"
        judge.candidateA = "There are 3."
        judge.candidateB = "There are 4."
        judge.verdictMode = .generate
        judge.seed = 99
        judge.sampling = sampling
        judge.maxVerdictTokens = 32

        var verdict = Stagebeam_V1_JudgeResult()
        verdict.requestID = "r-2"
        verdict.jobID = "job-1"
        verdict.choice = .unparsable
        verdict.verdictText = "Both are fine."
        verdict.probabilityFirst = 0.25
        verdict.probabilitySecond = 0.75
        verdict.promptTokens = 300
        verdict.prefillMs = 12
        verdict.decodeMs = 30
        verdict.workerID = "judge-1"

        var submit = Stagebeam_V1_SubmitJob()
        submit.jobID = "job-1"
        submit.question = "How many apples?"
        submit.image = image.data
        submit.method = .bestOfN
        submit.beam = 4
        submit.tournament = .bracket
        submit.maxStageTokens = 512
        submit.maxVerdictTokens = 256
        submit.judgeSampling = sampling
        submit.seed = 7
        submit.judgeBothOrders = true
        submit.verdictMode = .logprob
        submit.forceTags = false
        submit.recordSearch = true
        submit.sampling = sampling
        submit.streamEvents = true

        var accepted = Stagebeam_V1_JobAccepted()
        accepted.jobID = "job-1"
        accepted.queuePosition = 2
        accepted.alreadyKnown = true

        var event = Stagebeam_V1_JobEvent()
        event.jobID = "job-1"
        event.stage = .caption
        event.step = 1
        var comparison = Stagebeam_V1_Verdict()
        comparison.firstIndex = 0
        comparison.secondIndex = 3
        comparison.choice = .second
        comparison.probabilityFirst = 0.4
        comparison.probabilitySecond = 0.6
        comparison.winnerIndex = 3
        event.verdict = comparison

        var result = Stagebeam_V1_JobResult()
        result.jobID = "job-1"
        result.status = .failed
        result.answer = "3"
        var stage = Stagebeam_V1_StageSummary()
        stage.stage = .conclusion
        stage.step = 3
        stage.text = "<CONCLUSION>3</CONCLUSION>"
        stage.candidates = 4
        stage.comparisons = 3
        stage.forcedClose = true
        stage.generateMs = 100
        stage.judgeMs = 50
        result.stages = [stage]
        result.counts.candidates = 16
        result.counts.generatedTokens = 2048
        result.counts.judgeCalls = 12
        result.counts.unparsableVerdicts = 1
        result.counts.redispatchedRequests = 2
        result.queueMs = 5
        result.totalMs = 1500
        result.searchRecordJson = Data(#"{"stages":[]}"#.utf8)
        result.error = error

        var worker = Stagebeam_V1_WorkerStatus()
        worker.workerID = "worker-ä1"
        worker.modelName = "tiny-llava"
        worker.roles = [.generate]
        worker.maxBatchSequences = 8
        worker.inFlightSequences = 4
        worker.sinceLastHeardMs = 250
        worker.utilisation = 0.5
        var status = Stagebeam_V1_StatusReply()
        status.workers = [worker]
        status.queueDepth = 3
        status.runningJobs = 2
        status.utilisation = 0.5
        status.protocolVersion = EnvelopeCodec.protocolVersion
        result.counts.candidatePromptTokens = 900
        result.counts.candidateReusedPrefixTokens = 300
        result.counts.judgePromptTokens = 1200
        result.currentStage = .reasoning

        var cancel = Stagebeam_V1_CancelJob()
        cancel.jobID = "job-1"
        cancel.reason = "the user pressed stop"
        var get = Stagebeam_V1_GetJob()
        get.jobID = "job-1"
        get.recordSearch = true
        get.wait = true
        get.streamEvents = true
        var list = Stagebeam_V1_ListJobs()
        list.owner = "team-a"
        var info = Stagebeam_V1_JobInfo()
        info.jobID = "job-1"
        info.state = "cancelled"
        info.error = "cancelled: the user pressed stop"
        var jobs = Stagebeam_V1_JobList()
        jobs.jobs = [info]

        return [
            .ready(ready), .heartbeat(heartbeat), .disconnect(disconnect),
            .generateRequest(generate), .generateResult(generated),
            .judgeRequest(judge), .judgeResult(verdict),
            .submitJob(submit), .jobAccepted(accepted), .jobEvent(event), .jobResult(result),
            .statusRequest(Stagebeam_V1_StatusRequest()), .statusReply(status),
            .cancelJob(cancel), .getJob(get), .listJobs(list), .jobList(jobs),
            .error(error)
        ]
    }

    /// Every kind of job event, for the oneof inside JobEvent.
    static var jobEvents: [Stagebeam_V1_JobEvent] {
        var started = Stagebeam_V1_JobEvent()
        started.jobID = "job-1"
        started.stage = .summary
        started.stageStarted.candidates = 4

        var ready = Stagebeam_V1_JobEvent()
        ready.jobID = "job-1"
        ready.stage = .summary
        var summary = Stagebeam_V1_CandidateSummary()
        summary.index = 1
        summary.text = "<SUMMARY>plan</SUMMARY>"
        summary.seed = 12
        summary.tokenCount = 5
        summary.forcedClose = true
        summary.workerID = "worker-2"
        ready.candidatesReady.candidates = [summary]

        var winner = Stagebeam_V1_JobEvent()
        winner.jobID = "job-1"
        winner.stage = .summary
        winner.winner.index = 1
        winner.winner.text = "<SUMMARY>plan</SUMMARY>"
        return [started, ready, winner]
    }
}
