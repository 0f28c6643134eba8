import Foundation
import Logging
import Search
import Transport
import Wire

/// Everything the `Dispatcher` knows, changed only inside its `Mutex`: the worker registry, the work
/// waiting for credits and the requests in flight. The rules are the dispatcher's (see there).
///
/// The work objects it holds are not `Sendable`: they enter built inside the lock from sendable
/// parts, and only sendable values leave it (results, and the continuations to resume).
struct DispatchState {
    private let settings: Dispatcher.Settings
    private let codec: EnvelopeCodec
    /// Sends one routed message ([routing id, envelope]); thread-safe.
    private let send: @Sendable ([[UInt8]]) -> Void
    /// The coordinator's: every line about work names its job (`job_id`).
    private let logger: Logger
    /// Where requests, batch sizes, images and worker removals are counted (the coordinator's).
    private let metrics: Metrics?

    private(set) var workers: [[UInt8]: WorkerRecord] = [:]
    private var liveness: PeerLiveness<[UInt8]>
    private var pending: [Work] = []
    private var inFlight: [String: InFlight] = [:]
    private var nextRequest = 0
    /// Makes request ids unique across coordinator restarts, so that a late answer to a request of a
    /// previous run is never mistaken for the answer to a new one.
    private let incarnation = String(UInt32.random(in: .min ... .max), radix: 36)
    private(set) var redispatchedByJob: [String: Int] = [:]
    /// The determinism caveats of the workers that answered each job's requests.
    private(set) var caveatsByJob: [String: Set<String>] = [:]
    private var redispatchedTotal: UInt64 = 0
    /// Jobs ended by `end(job:)`, with the error their later work fails with.
    private var ended: [String: ClusterError] = [:]
    /// Callers to resume once the lock is released (`takeCompletions`).
    private var completions: [@Sendable () -> Void] = []

    init(
        settings: Dispatcher.Settings, codec: EnvelopeCodec, send: @escaping @Sendable ([[UInt8]]) -> Void, logger: Logger,
        metrics: Metrics?
    ) {
        self.settings = settings
        self.codec = codec
        self.send = send
        self.logger = logger
        self.metrics = metrics
        liveness = PeerLiveness(policy: settings.heartbeat)
    }

    // MARK: Changes, one per message (the dispatcher then calls `dispatch` and `takeCompletions`)

    /// Queues work, or fails it at once when its job has ended.
    mutating func enqueue(_ work: Work) {
        if let error = ended[work.jobID] {
            abort(work, error)
        } else {
            pending.append(work)
        }
    }

    /// See `Dispatcher.end(job:_:)`.
    mutating func end(job: String, _ error: ClusterError) {
        ended[job] = error
        for work in pending where work.jobID == job { abort(work, error) }
        pending.removeAll { $0.isDone }
        var stopping: [[UInt8]: [String]] = [:]
        for (id, entry) in inFlight where entry.work.jobID == job {
            inFlight[id]?.abandoned = true
            abort(entry.work, error)
            stopping[entry.worker, default: []].append(id)
        }
        for (worker, ids) in stopping { stop(ids.sorted(), of: job, on: worker, reason: error.message) }
    }

    /// Tells `worker` to stop requests of an ended job. A version-1 worker knows no StopRequests:
    /// it answers when done, as before.
    private func stop(_ ids: [String], of job: String, on worker: [UInt8], reason: String) {
        guard let version = workers[worker]?.protocolVersion, version >= 2 else { return }
        var stop = Stagebeam_V1_StopRequests()
        stop.requestIds = ids
        stop.jobID = job
        stop.reason = reason
        guard let frame = try? codec.encode(.stopRequests(stop), version: version) else { return }
        logger.debug(
            "requests stopped",
            metadata: ["job_id": "\(job)", "worker_id": "\(workerName(worker))", "requests": .stringConvertible(ids.count)])
        send([worker, frame])
    }

    mutating func forget(job: String) {
        ended[job] = nil
        redispatchedByJob[job] = nil
    }

    /// Fails the work of an ended job without a line of its own (the job's says why).
    private mutating func abort(_ work: Work, _ error: ClusterError) {
        switch work {
        case .generate(let generate) where !generate.done:
            generate.done = true
            let continuation = generate.continuation
            completions.append { continuation.resume(throwing: error) }
        case .judge(let judge) where !judge.done:
            judge.done = true
            let continuation = judge.continuation
            completions.append { continuation.resume(throwing: error) }
        case .reward(let reward) where !reward.done:
            reward.done = true
            let continuation = reward.continuation
            completions.append { continuation.resume(throwing: error) }
        default: break
        }
    }

    /// Registers a checked worker, or returns why it may not join.
    mutating func register(_ key: [UInt8], _ ready: Stagebeam_V1_Ready, now: ContinuousClock.Instant) -> ClusterError? {
        if let mismatch = modelMismatch(ready, key: key) { return mismatch }
        if settings.pinnedModel == nil {
            for role in ready.roles where role != .reward && !hasWorker(role: role) {
                logger.notice(
                    "model chosen for a role",
                    metadata: [
                        "role": "\(role.logName)", "model_hash": "\(ready.modelHash)", "worker_id": "\(ready.workerID)",
                        "model": "\(ready.modelName)"
                    ])
            }
        }
        if ready.roles.contains(.reward) && !hasWorker(role: .reward) {
            logger.notice(
                "model chosen for a role",
                metadata: [
                    "role": "reward", "model_hash": "\(ready.rewardModelHash)", "worker_id": "\(ready.workerID)",
                    "scorer": "\(ready.rewardScorer)"
                ])
        }
        if workers[key] != nil { removeWorker(key, .reconnected, now: now) }
        workers[key] = WorkerRecord(key: key, ready: ready, now: now)
        liveness.heard(key, at: now)
        logger.info(
            "worker registered",
            metadata: [
                "worker_id": "\(ready.workerID)", "model": "\(ready.modelName)", "model_hash": "\(ready.modelHash.prefix(12))",
                "roles": "\(ready.roles.map(\.logName).joined(separator: ","))",
                "credits": .stringConvertible(ready.maxBatchSequences)
            ].merging(
                ready.roles.contains(.reward)
                    ? ["reward_scorer": "\(ready.rewardScorer)", "reward_model_hash": "\(ready.rewardModelHash.prefix(12))"] : [:]
            ) { $1 })
        return nil
    }

    /// A sign of life from `key`; returns whether it is a registered worker.
    mutating func heard(from key: [UInt8], now: ContinuousClock.Instant) -> Bool {
        guard workers[key] != nil else { return false }
        liveness.heard(key, at: now)
        return true
    }

    mutating func disconnect(from key: [UInt8], reason: String, now: ContinuousClock.Instant) {
        guard workers[key] != nil else { return }
        removeWorker(key, .disconnected(goodbye: reason), now: now)
    }

    mutating func generateResult(from key: [UInt8], _ result: Stagebeam_V1_GenerateResult, now: ContinuousClock.Instant) {
        guard let entry = takeInFlight(result.requestID, from: key, now: now) else { return }
        guard case .generate(let work) = entry.work, !entry.abandoned, !work.done else { return }
        guard result.candidates.count == entry.indices.count else {
            retryOrFail(
                entry.work, indices: entry.indices, worker: key, request: result.requestID,
                error: ClusterError(
                    .internal, "worker returned \(result.candidates.count) candidates for \(entry.indices.count) seeds",
                    requestID: result.requestID, jobID: work.job.id))
            return
        }
        let workerID = workers[key]?.workerID ?? result.workerID
        for (index, candidate) in zip(entry.indices, result.candidates) {
            work.results[index] = GeneratedCandidate(
                text: candidate.text, tokenCount: Int(candidate.tokenCount), cumulativeLogprob: candidate.cumulativeLogprob,
                finishReason: FinishReason(wire: candidate.finishReason), worker: workerID)
        }
        work.answeredBy.insert(key)
        work.job.usage.add(prompt: result.promptTokens, reused: result.reusedPrefixTokens)
        work.cost =
            work.cost
            + ComputeCost(
                prefillSeconds: result.prefillMs / 1000, decodeSeconds: result.decodeMs / 1000,
                promptTokens: Int(result.promptTokens), reusedPromptTokens: Int(result.reusedPrefixTokens))
        if work.unassigned.isEmpty, work.results.allSatisfy({ $0 != nil }) {
            work.done = true
            work.job.prefixHolders.workers = work.answeredBy
            let measured = MeasuredCandidates(candidates: work.results.map { $0! }, cost: work.cost)
            let continuation = work.continuation
            completions.append { continuation.resume(returning: measured) }
        }
    }

    mutating func judgeResult(from key: [UInt8], _ result: Stagebeam_V1_JudgeResult, now: ContinuousClock.Instant) {
        guard let entry = takeInFlight(result.requestID, from: key, now: now) else { return }
        guard case .judge(let work) = entry.work, !entry.abandoned, !work.done else { return }
        var answers: [Stagebeam_V1_JudgeMatchResult]
        if result.matchResults.isEmpty {
            // A single match's answer; or the first match's alone, from a worker built before
            // `more_matches`: the others are sent again, one match per request from now on.
            answers = [Stagebeam_V1_JudgeMatchResult(result)]
            if entry.indices.count > 1 { judgedFirstMatchOnly(work, indices: entry.indices, by: key, request: result.requestID) }
        } else if result.matchResults.count == entry.indices.count {
            answers = result.matchResults
        } else {
            retryOrFail(
                entry.work, indices: entry.indices, worker: key, request: result.requestID,
                error: ClusterError(
                    .internal, "worker answered \(result.matchResults.count) of the request's \(entry.indices.count) matches",
                    requestID: result.requestID, jobID: work.job.id))
            return
        }
        var failed: [Int] = []
        var failure: ClusterError?
        for (index, answer) in zip(entry.indices, answers) {
            if answer.hasError && answer.error.code != .promptTooLong {
                failed.append(index)
                failure = ClusterError(answer.error)
                continue
            }
            work.results[index] = MeasuredReply(answer, mode: work.requests[index].mode)
            work.job.usage.addJudge(generated: answer.generatedTokens)
        }
        work.answeredBy.insert(key)
        if let failure {
            retryOrFail(entry.work, indices: failed, worker: key, request: result.requestID, error: failure)
        }
        completeIfAnswered(work)
    }

    /// The first match of `indices` was answered alone: the rest go back to the queue.
    private mutating func judgedFirstMatchOnly(_ work: JudgeWork, indices: [Int], by key: [UInt8], request: String) {
        if workers[key]?.judgesOneMatchPerRequest == false {
            workers[key]?.judgesOneMatchPerRequest = true
            logger.notice(
                "worker judges one match per request (built before judge requests of several matches)",
                metadata: ["worker_id": "\(workerName(key))", "request_id": "\(request)"])
        }
        work.unassigned = (work.unassigned + indices.dropFirst()).sorted()
        queueFirst(.judge(work))
    }

    /// Puts `work` at the head of the queue, unless it is queued already.
    private mutating func queueFirst(_ work: Work) {
        if !pending.contains(where: { $0.isSame(as: work) }) { pending.insert(work, at: 0) }
    }

    /// Resumes the search once every match of `work` has its reply.
    private mutating func completeIfAnswered(_ work: JudgeWork) {
        guard !work.done, work.unassigned.isEmpty, work.results.allSatisfy({ $0 != nil }) else { return }
        work.done = true
        work.job.judgePrefixHolders.add(work.answeredBy)
        let replies = work.results.map { $0! }
        let continuation = work.continuation
        completions.append { continuation.resume(returning: replies) }
    }

    /// Forwards the new text of a request's candidates to its job's clients, unless the request was
    /// abandoned (its text is superseded by the next attempt's).
    mutating func generateProgress(from key: [UInt8], _ progress: Stagebeam_V1_GenerateProgress) {
        guard let entry = inFlight[progress.requestID], entry.worker == key, !entry.abandoned, case .generate(let work) = entry.work,
            !work.done, let deliver = work.job.candidateText.delivery
        else { return }
        let stage = work.job.stage.current
        let step = work.job.stage.step
        // The step's candidates by seed (best-of-N sends some candidates of a step per request).
        let indexOfSeed = Dictionary(
            (0..<work.job.beam).map { (SeedDerivation.candidateSeed(job: work.job.seed, unit: step, candidate: $0), $0) }
        ) { first, _ in first }
        let events = progress.candidates.compactMap { candidate -> Stagebeam_V1_JobEvent? in
            guard Int(candidate.index) < entry.indices.count else { return nil }
            let seedIndex = entry.indices[Int(candidate.index)]
            var text = Stagebeam_V1_CandidateText()
            text.index = UInt32(indexOfSeed[work.request.seeds[seedIndex]] ?? seedIndex)
            text.text = candidate.text
            text.tokenCount = candidate.tokenCount
            text.attempt = UInt32(work.attempts[seedIndex])
            var event = Stagebeam_V1_JobEvent()
            event.jobID = work.job.id
            event.stage = stage
            event.step = UInt32(step)
            event.candidateText = text
            return event
        }
        completions.append { for event in events { deliver(event) } }
    }

    mutating func rewardResult(from key: [UInt8], _ result: Stagebeam_V1_RewardResult, now: ContinuousClock.Instant) {
        guard let entry = takeInFlight(result.requestID, from: key, now: now) else { return }
        guard case .reward(let work) = entry.work, !entry.abandoned, !work.done else { return }
        guard result.scores.count == entry.indices.count else {
            retryOrFail(
                entry.work, indices: entry.indices, worker: key, request: result.requestID,
                error: ClusterError(
                    .internal, "worker returned \(result.scores.count) scores for \(entry.indices.count) candidates",
                    requestID: result.requestID, jobID: work.job.id))
            return
        }
        let pinned = work.job.rewardModel.identity
        guard result.rewardModelHash == pinned else {
            // The worker was replaced under the same id by one serving another reward model.
            retryOrFail(
                entry.work, indices: entry.indices, worker: key, request: result.requestID,
                error: ClusterError(
                    .modelMismatch,
                    "scores from reward model \(result.rewardModelHash.prefix(16))…, but the job's reward model is \((pinned ?? "").prefix(16))…",
                    requestID: result.requestID, jobID: work.job.id))
            return
        }
        for (index, score) in zip(entry.indices, result.scores) { work.results[index] = score }
        if work.unassigned.isEmpty, work.results.allSatisfy({ $0 != nil }) {
            work.done = true
            let measured = MeasuredScores(scores: work.results.map { $0! }, rewardModel: result.rewardModelHash)
            let continuation = work.continuation
            completions.append { continuation.resume(returning: measured) }
        }
    }

    mutating func workerError(from key: [UInt8], _ error: Stagebeam_V1_Error, now: ContinuousClock.Instant) {
        if error.code == .cancelled, let entry = inFlight[error.requestID], entry.worker == key, entry.abandoned {
            // A request this coordinator stopped: only its credits come back.
            _ = takeInFlight(error.requestID, from: key, now: now)
            return
        }
        logger.warning("worker error", metadata: ClusterError(error).logMetadata.merging(["worker_id": "\(workerName(key))"]) { $1 })
        guard !error.requestID.isEmpty, let entry = takeInFlight(error.requestID, from: key, now: now) else { return }
        if error.code == .imageNotCached, let image = entry.work.imageHash { workers[key]?.images.remove(image) }
        guard !entry.abandoned, !entry.work.isDone else { return }
        if error.code == .overloaded {
            // Busy with work it was sent before (e.g. by a previous coordinator): not the
            // request's fault. Leave the worker alone for an interval and send the work again.
            workers[key]?.restingUntil = now + settings.heartbeat.interval
            requeue(entry.work, indices: entry.indices, from: key, request: error.requestID, .overloaded)
            return
        }
        if error.code == .promptTooLong, case .judge(let judge) = entry.work {
            // The comparison does not fit the judge's context: every worker holds the same model,
            // so this is the judge's answer (the match is undecided), not a failure to retry. A
            // request of several matches is answered so only by a worker that judges the first alone.
            judge.results[entry.indices[0]] = MeasuredReply(reply: .promptTooLong(message: error.message), cost: nil)
            if entry.indices.count > 1 { judgedFirstMatchOnly(judge, indices: entry.indices, by: key, request: error.requestID) }
            completeIfAnswered(judge)
            return
        }
        retryOrFail(entry.work, indices: entry.indices, worker: key, request: error.requestID, error: ClusterError(error))
    }

    // MARK: The clock

    mutating func tick(now: ContinuousClock.Instant) {
        for key in liveness.removeExpired(at: now) where workers[key] != nil {
            removeWorker(key, .missedHeartbeats, now: now)
        }
        for (id, entry) in inFlight where !entry.abandoned && entry.deadline < now && !entry.work.isDone {
            inFlight[id]?.abandoned = true
            requeue(entry.work, indices: entry.indices, from: entry.worker, request: id, .deadlineExceeded)
        }
        for work in pending
        where !work.isDone && !workers.values.contains(where: work.canRun) && work.queuedSince + settings.noWorkerWait < now {
            fail(work, ClusterError(.noWorker, noWorkerMessage(work), jobID: work.jobID))
        }
        pending.removeAll { $0.isDone }
    }

    /// Why `work` found no worker: its role, and for reward work the reward model or scorer it needs.
    private func noWorkerMessage(_ work: Work) -> String {
        let wait = "for \(settings.noWorkerWait)"
        guard case .reward(let reward) = work else { return "no live \(work.role.logName) worker \(wait)" }
        let serving = Set(
            workers.values.filter { $0.roles.contains(.reward) }.map { "\($0.rewardScorer) (\($0.rewardModelHash.prefix(16))…)" })
        var needs: [String] = []
        if let pinned = reward.job.rewardModel.identity {
            needs.append("reward model \(pinned.prefix(16))…, which scored its earlier candidates")
        }
        if let scorer = reward.scorer { needs.append("scorer \(scorer), which its swires thresholds were calibrated with") }
        if serving.isEmpty || needs.isEmpty {
            return "no live reward worker \(wait): stage-beam and swires need workers started with --roles including reward"
        }
        return "no live reward worker with the job's \(needs.joined(separator: " and ")) \(wait); "
            + "the cluster's reward workers serve \(serving.sorted().joined(separator: ", "))"
    }

    // MARK: Status

    func snapshot(now: ContinuousClock.Instant) -> Dispatcher.Snapshot {
        let list = workers.values.sorted { $0.workerID < $1.workerID }.map { worker in
            var status = Stagebeam_V1_WorkerStatus()
            status.workerID = worker.workerID
            status.modelName = worker.modelName
            status.roles = worker.roles.sorted { $0.rawValue < $1.rawValue }
            status.maxBatchSequences = UInt32(worker.maxSequences)
            status.inFlightSequences = UInt32(worker.inFlightSequences)
            status.creditsAvailable = UInt32(worker.freeCredits)
            status.requestsCompleted = worker.requestsCompleted
            status.requestsRedispatched = worker.requestsRedispatched
            status.largestRequestSequences = UInt32(worker.largestRequest)
            status.utilisation = worker.utilisation.fraction(at: now)
            if worker.roles.contains(.reward) {
                status.rewardScorer = worker.rewardScorer
                status.rewardModelHash = worker.rewardModelHash
                status.rewardModelName = worker.rewardModelName
                status.rewardModelKind = worker.rewardModelKind
            }
            return status
        }
        return Dispatcher.Snapshot(workers: list, pendingRequests: pending.count, redispatched: redispatchedTotal)
    }

    /// The recommended search settings announced by the generate worker with the smallest id.
    func announcedRecommendations() -> Data? {
        workers.values.filter { $0.roles.contains(.generate) }.min { $0.workerID < $1.workerID }?.recommendationsJSON
    }

    /// The callers to resume, handed over once per change.
    mutating func takeCompletions() -> [@Sendable () -> Void] {
        defer { completions = [] }
        return completions
    }

    // MARK: Internals

    private func hasWorker(role: Stagebeam_V1_Role) -> Bool {
        workers.values.contains { $0.roles.contains(role) }
    }

    /// Why `ready` may not join: a role it announces serves another model in this cluster (the
    /// operator's pin, else the model of that role's other registered workers), or nil.
    private func modelMismatch(_ ready: Stagebeam_V1_Ready, key: [UInt8]) -> ClusterError? {
        for role in ready.roles.sorted(by: { $0.rawValue < $1.rawValue }) {
            if role == .reward {
                if let mismatch = rewardModelMismatch(ready, key: key) { return mismatch }
                continue
            }
            let expected: String, decidedBy: String
            if let pinned = settings.pinnedModel {
                (expected, decidedBy) = (pinned, "pinned by the coordinator's --model/--model-id")
            } else if let other = workers.values.filter({ $0.key != key && $0.roles.contains(role) }).min(by: { $0.workerID < $1.workerID })
            {
                (expected, decidedBy) = (other.modelHash, "the model of registered worker \(other.workerID)")
            } else {
                continue
            }
            guard expected != ready.modelHash else { continue }
            return ClusterError(
                .modelMismatch,
                "worker \(ready.workerID) serves \(ready.modelName) (model identity \(ready.modelHash.prefix(16))…) as \(role.logName), "
                    + "but this cluster's \(role.logName) workers serve \(expected.prefix(16))… (\(decidedBy)); "
                    + "every worker of a role must serve the same model")
        }
        return nil
    }

    /// Why `ready` may not serve the reward role: this cluster's reward workers serve another reward
    /// model (that of its registered reward worker with the smallest id). The coordinator's model pin
    /// is the policy's: a reward model is a checkpoint of its own.
    private func rewardModelMismatch(_ ready: Stagebeam_V1_Ready, key: [UInt8]) -> ClusterError? {
        guard
            let other = workers.values.filter({ $0.key != key && $0.roles.contains(.reward) }).min(by: { $0.workerID < $1.workerID }),
            other.rewardModelHash != ready.rewardModelHash
        else { return nil }
        return ClusterError(
            .modelMismatch,
            "worker \(ready.workerID) scores with \(ready.rewardScorer) (reward model identity \(ready.rewardModelHash.prefix(16))…), "
                + "but this cluster's reward workers score with \(other.rewardScorer) (\(other.rewardModelHash.prefix(16))…, the model of "
                + "registered worker \(other.workerID)); every reward worker must serve the same reward model")
    }

    /// Sends pending work to workers with free credits, oldest work first.
    mutating func dispatch(now: ContinuousClock.Instant) {
        // Keys only: the records change as work is sent, so each use reads them afresh.
        let available = workers.values.filter { $0.freeCredits > 0 && $0.restingUntil <= now }.map(\.key)
        for work in pending where !work.isDone {
            switch work {
            case .generate(let generate):
                let candidates = Self.preferring(
                    available.compactMap { workers[$0] }.filter { $0.roles.contains(.generate) && $0.freeCredits > 0 },
                    over: generate.failedOn
                ).sorted { $0.workerID < $1.workerID }
                let holders = generate.job.prefixHolders.workers
                let warm = candidates.filter { holders.contains($0.key) }, cold = candidates.filter { !holders.contains($0.key) }
                let warmShares = CreditSplit.split(generate.unassigned.count, free: warm.map(\.freeCredits))
                let coldShares = CreditSplit.split(generate.unassigned.count - warmShares.reduce(0, +), free: cold.map(\.freeCredits))
                for (worker, share) in zip(warm + cold, warmShares + coldShares) where share > 0 && !generate.done {
                    let indices = Array(generate.unassigned.prefix(share))
                    generate.unassigned.removeFirst(share)
                    sendGenerate(generate, indices: indices, to: worker.key, now: now)
                }
            case .judge(let judge):
                let candidates = Self.preferring(
                    available.compactMap { workers[$0] }.filter { $0.roles.contains(.judge) && $0.freeCredits > 0 }, over: judge.failedOn)
                let judged = judge.job.judgePrefixHolders.workers, generated = judge.job.prefixHolders.workers
                let warmth = { (worker: WorkerRecord) in judged.contains(worker.key) ? 0 : generated.contains(worker.key) ? 1 : 2 }
                let ordered = candidates.sorted { (warmth($0), $0.workerID) < (warmth($1), $1.workerID) }
                let shares = CreditSplit.spread(judge.unassigned.count, free: ordered.map(\.freeCredits))
                for (worker, share) in zip(ordered, shares) where share > 0 && !judge.done {
                    let indices = Array(judge.unassigned.prefix(share))
                    judge.unassigned.removeFirst(share)
                    if worker.judgesOneMatchPerRequest {
                        for index in indices { sendJudge(judge, indices: [index], to: worker.key, now: now) }
                    } else {
                        sendJudge(judge, indices: indices, to: worker.key, now: now)
                    }
                }
            case .reward(let reward):
                var candidates = Self.preferring(
                    available.compactMap { workers[$0] }.filter { reward.canRun(on: $0) && $0.freeCredits > 0 }, over: reward.failedOn
                ).sorted { $0.workerID < $1.workerID }
                guard let first = candidates.first else { continue }
                // The job's first scores decide its reward model (every reward worker of the cluster
                // serves one, but that one may change between calls when they all leave).
                let pinned = reward.job.rewardModel.pin(first.rewardModelHash)
                candidates = candidates.filter { $0.rewardModelHash == pinned }
                let shares = CreditSplit.split(reward.unassigned.count, free: candidates.map(\.freeCredits))
                for (worker, share) in zip(candidates, shares) where share > 0 && !reward.done {
                    let indices = Array(reward.unassigned.prefix(share))
                    reward.unassigned.removeFirst(share)
                    sendReward(reward, indices: indices, to: worker.key, now: now)
                }
            }
        }
        pending.removeAll { work in
            switch work {
            case .generate(let generate): generate.done || generate.unassigned.isEmpty
            case .judge(let judge): judge.done || judge.unassigned.isEmpty
            case .reward(let reward): reward.done || reward.unassigned.isEmpty
            }
        }
    }

    /// The workers not in `failed`, or all of them when none is left.
    private static func preferring(_ workers: [WorkerRecord], over failed: Set<[UInt8]>) -> [WorkerRecord] {
        let others = workers.filter { !failed.contains($0.key) }
        return others.isEmpty ? workers : others
    }

    private mutating func newRequestID(_ job: String, _ kind: String) -> String {
        nextRequest += 1
        return "\(job)/\(incarnation)-\(kind)\(nextRequest)"
    }

    /// The image for a request to `worker`: bytes only if it does not hold them yet.
    private mutating func imageRef(_ image: ImagePayload?, for worker: [UInt8]) -> Stagebeam_V1_ImageRef? {
        guard let image else { return nil }
        var ref = Stagebeam_V1_ImageRef()
        ref.sha256 = image.sha256
        if workers[worker]?.images.contains(image.sha256) != true {
            ref.data = Data(image.data)
            workers[worker]?.images.insert(image.sha256)
            metrics?.inc(CoordinatorMetrics.imagesSent, [("as", "bytes")])
        } else {
            metrics?.inc(CoordinatorMetrics.imagesSent, [("as", "hash")])
        }
        return ref
    }

    private mutating func sendGenerate(_ work: GenerateWork, indices: [Int], to worker: [UInt8], now: ContinuousClock.Instant) {
        let id = newRequestID(work.job.id, "g")
        var message = Stagebeam_V1_GenerateRequest()
        message.requestID = id
        message.jobID = work.job.id
        message.deadlineMs = milliseconds(settings.requestTimeout)
        message.question = work.request.question
        if let image = imageRef(work.job.image, for: worker) { message.image = image }
        message.assistantPrefix = work.request.assistantPrefix
        message.n = UInt32(indices.count)
        message.seeds = indices.map { work.request.seeds[$0] }
        message.sampling = work.request.sampling.wire
        message.stop = work.request.stop
        message.maxNewTokens = UInt32(clamping: work.request.maxNewTokens)
        message.stage = work.job.stage.current
        message.firstCandidateIndex = UInt32(indices[0])
        message.progressIntervalMs = work.job.candidateText.progressIntervalMs
        for index in indices { work.attempts[index] += 1 }
        transmit(.generateRequest(message), id: id, work: .generate(work), indices: indices, to: worker, now: now)
    }

    /// The matches `indices` of `work` as one request: the first in the request's own fields, the
    /// others in `more_matches`.
    private mutating func sendJudge(_ work: JudgeWork, indices: [Int], to worker: [UInt8], now: ContinuousClock.Instant) {
        let id = newRequestID(work.job.id, "j")
        let request = work.requests[indices[0]]
        var message = Stagebeam_V1_JudgeRequest()
        message.requestID = id
        message.jobID = work.job.id
        message.deadlineMs = milliseconds(settings.requestTimeout)
        message.stage = request.topic.wire
        if let image = imageRef(work.job.image, for: worker) { message.image = image }
        message.verdictMode = request.mode.wire
        message.seed = request.seed
        message.sampling = request.sampling.wire
        message.maxVerdictTokens = UInt32(clamping: request.maxNewTokens)
        message.prompt = request.prompt
        message.verdictPrefix = request.verdictPrefix
        message.choices = request.choices
        message.moreMatches = indices.dropFirst().map { index in
            var match = Stagebeam_V1_JudgeMatch()
            match.prompt = work.requests[index].prompt
            match.seed = work.requests[index].seed
            return match
        }
        transmit(.judgeRequest(message), id: id, work: .judge(work), indices: indices, to: worker, now: now)
    }

    /// A scorer call's candidates `indices` as one request. Each candidate's text is split at its
    /// stage's opening tag into the earlier stages (sent once per distinct prefix) and its own stage.
    private mutating func sendReward(_ work: RewardWork, indices: [Int], to worker: [UInt8], now: ContinuousClock.Instant) {
        let id = newRequestID(work.job.id, "r")
        let request = work.request
        var message = Stagebeam_V1_RewardRequest()
        message.requestID = id
        message.jobID = work.job.id
        message.deadlineMs = milliseconds(settings.requestTimeout)
        message.stage = request.topic.wire
        message.question = request.question
        if let image = imageRef(work.job.image, for: worker) { message.image = image }
        let opening = Stage(rawValue: request.topic.rawValue)?.openingTag
        var prefixIndex: [String: UInt32] = [:]
        message.candidates = indices.map { index in
            let answer = request.answers[index]
            let split = opening.flatMap { answer.range(of: $0, options: .backwards)?.lowerBound } ?? answer.startIndex
            let prefix = String(answer[..<split])
            var candidate = Stagebeam_V1_RewardCandidate()
            if let known = prefixIndex[prefix] {
                candidate.prefixIndex = known
            } else {
                candidate.prefixIndex = UInt32(message.assistantPrefixes.count)
                prefixIndex[prefix] = candidate.prefixIndex
                message.assistantPrefixes.append(prefix)
            }
            candidate.text = String(answer[split...])
            return candidate
        }
        message.verification = request.verification
        message.verdictPrefix = request.verdictPrefix
        message.choices = request.choices
        transmit(.rewardRequest(message), id: id, work: .reward(work), indices: indices, to: worker, now: now)
    }

    private mutating func transmit(
        _ body: Stagebeam_V1_Envelope.OneOf_Body, id: String, work: Work, indices: [Int],
        to worker: [UInt8], now: ContinuousClock.Instant
    ) {
        let frame: [UInt8]
        do {
            frame = try codec.encode(body, version: workers[worker]?.protocolVersion ?? EnvelopeCodec.protocolVersion)
        } catch {
            fail(work, ClusterError(error.code, "cannot send \(id): \(error.message)", requestID: id, jobID: work.jobID))
            return
        }
        let sequences = max(indices.count, 1)
        inFlight[id] = InFlight(
            work: work, indices: indices, worker: worker, sequences: sequences,
            deadline: now + settings.requestTimeout)
        if var record = workers[worker] {
            record.inFlightSequences += sequences
            record.largestRequest = max(record.largestRequest, sequences)
            record.utilisation.update(busy: true, at: now)
            workers[worker] = record
        }
        metrics?.observe(CoordinatorMetrics.requestSequences, Double(sequences), [("kind", work.role.logName)])
        logger.debug(
            "request sent",
            metadata: [
                "job_id": "\(work.jobID)", "request_id": "\(id)", "kind": "\(work.role.logName)",
                "worker_id": "\(workerName(worker))",
                "n": .stringConvertible(sequences), "stage": "\(work.stage.logName)"
            ])
        send([worker, frame])
    }

    /// Removes the in-flight entry `id` answered by `key`, returning its credits to the worker.
    private mutating func takeInFlight(_ id: String, from key: [UInt8], now: ContinuousClock.Instant) -> InFlight? {
        guard let entry = inFlight[id], entry.worker == key else {
            logger.notice("answer to an unknown request ignored", metadata: ["request_id": "\(id)", "worker_id": "\(workerName(key))"])
            return nil
        }
        inFlight[id] = nil
        metrics?.observe(
            CoordinatorMetrics.requestSeconds, milliseconds(now - (entry.deadline - settings.requestTimeout)) / 1000,
            [("kind", entry.work.role.logName)])
        if entry.abandoned {
            // It was re-dispatched at its deadline; only its credits come back.
            logger.info(
                "late answer ignored", metadata: ["job_id": "\(entry.work.jobID)", "request_id": "\(id)", "worker_id": "\(workerName(key))"]
            )
        }
        if var record = workers[key] {
            if !record.determinismCaveat.isEmpty && !entry.abandoned {
                caveatsByJob[entry.work.jobID, default: []].insert(record.determinismCaveat)
            }
            record.inFlightSequences -= entry.sequences
            record.requestsCompleted += 1
            record.utilisation.update(busy: record.inFlightSequences > 0, at: now)
            workers[key] = record
        }
        return entry
    }

    /// Forgets a worker and sends its in-flight work elsewhere.
    private mutating func removeWorker(_ key: [UInt8], _ removal: WorkerRemoval, now: ContinuousClock.Instant) {
        var metadata: Logger.Metadata = ["worker_id": "\(workerName(key))", "reason": "\(removal.reason)"]
        let level: Logger.Level
        switch removal {
        case .missedHeartbeats:
            level = .warning
            metadata["silent_s"] = .stringConvertible(milliseconds(settings.heartbeat.deadAfter) / 1000)
        case .disconnected(let goodbye):
            level = .info
            metadata["goodbye"] = "\(goodbye)"
        case .reconnected:
            level = .notice
        }
        metrics?.inc(CoordinatorMetrics.workerRemovals, [("reason", removal.reason)])
        let lost = inFlight.filter { $0.value.worker == key }
        metadata["in_flight"] = .stringConvertible(lost.count)
        logger.log(level: level, "worker lost", metadata: metadata)
        for (id, entry) in lost {
            inFlight[id] = nil
            if !entry.abandoned && !entry.work.isDone {
                requeue(entry.work, indices: entry.indices, from: key, request: id, .workerLost)
            }
        }
        let removed = workers[key]
        workers[key] = nil
        liveness.forget(key)
        // A reconnecting worker registers again at once, with its model.
        if case .reconnected = removal { return }
        if settings.pinnedModel == nil, let removed {
            for role in removed.roles where !hasWorker(role: role) {
                logger.notice(
                    "no worker of a role's model remains: the next worker of the role chooses its model",
                    metadata: ["role": "\(role.logName)", "model_hash": "\(role == .reward ? removed.rewardModelHash : removed.modelHash)"])
            }
        }
    }

    /// The worker's id for logs (its routing id when it is not registered).
    private func workerName(_ key: [UInt8]) -> String {
        workers[key]?.workerID ?? Coordinator.peerName(key)
    }

    private mutating func retryOrFail(_ work: Work, indices: [Int], worker: [UInt8], request: String, error: ClusterError) {
        let failures: Int
        switch work {
        case .generate(let generate): generate.failures += 1; failures = generate.failures
        case .judge(let judge): judge.failures += 1; failures = judge.failures
        case .reward(let reward): reward.failures += 1; failures = reward.failures
        }
        if error.isRetryable && failures < settings.maxAttempts {
            requeue(work, indices: indices, from: worker, request: request, .failed(error))
        } else {
            var error = error
            error.jobID = work.jobID
            fail(work, error)
        }
    }

    /// Puts work back at the front of the queue to be sent again (`request` is the request that
    /// carried it to `worker`).
    private mutating func requeue(_ work: Work, indices: [Int], from worker: [UInt8], request: String, _ cause: Redispatch) {
        var metadata: Logger.Metadata = [
            "job_id": "\(work.jobID)", "request_id": "\(request)", "kind": "\(work.role.logName)",
            "stage": "\(work.stage.logName)", "worker_id": "\(workerName(worker))", "reason": "\(cause.reason)"
        ]
        if case .failed(let error) = cause { metadata.merge(error.logMetadata.filter { $0.key.hasPrefix("error") }) { $1 } }
        logger.log(level: cause.level, "request re-dispatched", metadata: metadata)
        // The wait for a worker of its role starts again.
        switch work {
        case .generate(let generate): generate.queuedSince = .now
        case .judge(let judge): judge.queuedSince = .now
        case .reward(let reward): reward.queuedSince = .now
        }
        redispatchedByJob[work.jobID, default: 0] += 1
        redispatchedTotal += 1
        workers[worker]?.requestsRedispatched += 1
        switch work {
        case .generate(let generate):
            generate.failedOn.insert(worker)
            generate.unassigned = (generate.unassigned + indices).sorted()
        case .judge(let judge):
            judge.failedOn.insert(worker)
            judge.unassigned = (judge.unassigned + indices).sorted()
        case .reward(let reward):
            reward.failedOn.insert(worker)
            reward.unassigned = (reward.unassigned + indices).sorted()
        }
        queueFirst(work)
    }

    private mutating func fail(_ work: Work, _ error: ClusterError) {
        guard !work.isDone else { return }
        logger.error(
            "request failed",
            metadata: error.logMetadata.merging([
                "job_id": "\(work.jobID)", "kind": "\(work.role.logName)", "stage": "\(work.stage.logName)"
            ]) { $1 })
        switch work {
        case .generate(let generate):
            generate.done = true
            let continuation = generate.continuation
            completions.append { continuation.resume(throwing: error) }
        case .judge(let judge):
            judge.done = true
            let continuation = judge.continuation
            completions.append { continuation.resume(throwing: error) }
        case .reward(let reward):
            reward.done = true
            let continuation = reward.continuation
            completions.append { continuation.resume(throwing: error) }
        }
    }
}
