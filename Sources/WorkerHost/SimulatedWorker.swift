import Cluster
import Foundation
import Logging
import Search
import Synchronization
import Transport
import Wire

/// What simulated workers answer and how long they take, read from real searches' records
/// (`stagebeam run --json` on the real engine). A generate request's candidates replay recorded
/// candidates of its stage (picked by seed, so a seed always gets the same text); it takes the
/// recorded prefill of a call of that stage plus one decode step per token of its longest candidate,
/// a step costing what the engine measured for that many sequences decoded together. A judge request
/// replays a recorded verdict of its stage and takes that call's recorded engine time.
public struct ReplayBook: Sendable {
    struct Candidate: Sendable {
        let text: String
        let tokens: Int
        let finishReason: FinishReason
    }
    struct Verdict: Sendable {
        let reply: JudgeReply
        let seconds: Double
    }

    let candidates: [Stage: [Candidate]]
    let prefillSeconds: [Stage: [Double]]
    let verdicts: [JudgeTopic: [Verdict]]
    /// Seconds of one decode step by sequences decoded together, measured (`stagebeam bench`).
    let decodeStepSeconds: [(sequences: Int, seconds: Double)]

    /// `decodeStepSeconds`: (sequences, seconds) pairs; batches between two measured sizes are
    /// interpolated, beyond the largest extrapolated linearly from the last two.
    public init(records: [SearchResult], decodeStepSeconds: [(sequences: Int, seconds: Double)]) throws {
        var candidates: [Stage: [Candidate]] = [:]
        var prefill: [Stage: [Double]] = [:]
        var verdicts: [JudgeTopic: [Verdict]] = [:]
        for record in records {
            for stage in record.stages {
                for unit in stage.units {
                    candidates[stage.stage, default: []] += unit.candidates.map {
                        Candidate(text: $0.rawText, tokens: $0.tokens, finishReason: $0.finishReason)
                    }
                    prefill[stage.stage, default: []] += (unit.generateCosts ?? []).compactMap { $0.compute?.prefillSeconds }
                    for call in unit.tournament?.matches.flatMap(\.calls) ?? [] {
                        guard let compute = call.cost?.compute else { continue }
                        verdicts[JudgeTopic(stage.stage), default: []].append(
                            Verdict(reply: call.reply, seconds: compute.prefillSeconds + compute.decodeSeconds))
                    }
                }
            }
        }
        for stage in Stage.allCases where candidates[stage, default: []].isEmpty || prefill[stage, default: []].isEmpty {
            throw ClusterError(.invalidArgument, "the search records hold no measured \(stage.rawValue) candidates to replay")
        }
        guard !decodeStepSeconds.isEmpty, decodeStepSeconds.allSatisfy({ $0.sequences > 0 && $0.seconds > 0 }) else {
            throw ClusterError(.invalidArgument, "decode step times must be positive, for at least one batch size")
        }
        self.candidates = candidates
        self.prefillSeconds = prefill
        self.verdicts = verdicts
        self.decodeStepSeconds = decodeStepSeconds.sorted { $0.sequences < $1.sequences }
    }

    func stepSeconds(_ sequences: Int) -> Double {
        let points = decodeStepSeconds
        guard points.count > 1 else { return points[0].seconds }
        if sequences <= points[0].sequences { return points[0].seconds }
        let upper = points.firstIndex { $0.sequences >= sequences } ?? points.count - 1
        let (a, b) = (points[upper - 1], points[upper])
        let t = Double(sequences - a.sequences) / Double(b.sequences - a.sequences)
        return max(a.seconds + t * (b.seconds - a.seconds), points[0].seconds)
    }

    func generate(_ request: Stagebeam_V1_GenerateRequest) -> (candidates: [Candidate], seconds: Double) {
        let topic = JudgeTopic(wire: request.stage)
        let stage = Stage.allCases.first { JudgeTopic($0) == topic } ?? .summary
        let pool = candidates[stage]!
        let chosen = request.seeds.map { pool[Int($0 % UInt64(pool.count))] }
        let prefills = prefillSeconds[stage]!
        let prefill = prefills[Int((request.seeds.first ?? 0) % UInt64(prefills.count))]
        let steps = chosen.map(\.tokens).max() ?? 0
        return (chosen, prefill + Double(steps) * stepSeconds(chosen.count))
    }

    /// A recorded verdict of the request's stage; of any stage when none was recorded for it (the
    /// recorded searches may never have judged a stage whose candidates were all alike).
    func judge(_ request: Stagebeam_V1_JudgeRequest) -> Verdict? {
        let own = JudgeTopic(wire: request.stage).flatMap { verdicts[$0] } ?? []
        let pool = own.isEmpty ? JudgeTopic.allCases.flatMap { verdicts[$0] ?? [] } : own
        return pool.isEmpty ? nil : pool[Int(request.seed % UInt64(pool.count))]
    }
}

/// A worker that speaks the real protocol over a real socket but computes nothing: it registers,
/// heartbeats, and answers each request with replayed candidates or verdicts after the time the
/// real engine took (`ReplayBook`), one request after another. The matches of a judge request, which
/// a real worker may decode as one batch, are served one by one here, so judging is modelled
/// pessimistically. Many of them in one process stand in for a large cluster, so the
/// coordinator's own costs (dispatch, journal, fan-in) can be measured where the hardware is missing.
public final class SimulatedWorker: Sendable {
    private let workerID: String
    private let roles: [Stagebeam_V1_Role]
    private let maxBatch: Int
    private let book: ReplayBook
    private let modelHash: String
    private let codec = EnvelopeCodec()
    private let logger: Logger
    private let inFlight = Mutex<[String: Int]>([:])
    /// When the simulated engine is free again: like a real worker's engine, it serves one request at a
    /// time (a request's n candidates are one batch), so concurrent requests queue behind each other.
    private let busyUntil = Mutex(ContinuousClock.now)
    private let link = Mutex<DealerLink?>(nil)

    public init(
        context: ZMQContext, endpoint: String, workerID: String, roles: [Stagebeam_V1_Role], maxBatch: Int,
        book: ReplayBook, modelHash: String, logger: Logger
    ) throws {
        self.workerID = workerID
        self.roles = roles
        self.maxBatch = maxBatch
        self.book = book
        self.modelHash = modelHash
        var tagged = logger
        tagged[metadataKey: "worker_id"] = "\(workerID)"
        self.logger = tagged
        let dealer = try DealerLink(
            context: context,
            configuration: .init(
                endpoint: endpoint, routingID: Array(workerID.utf8), heartbeat: HeartbeatPolicy(interval: .milliseconds(500)),
                backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(2)), maxMessageBytes: Int64(codec.maxFrameBytes),
                name: "sim-worker"),
            greeting: { [unowned self] in readyFrames() },
            heartbeat: { [unowned self] in heartbeatFrames() },
            onMessage: { [unowned self] frames in handle(frames) })
        link.withLock { $0 = dealer }
    }

    public func close() {
        var goodbye = Stagebeam_V1_Disconnect()
        goodbye.reason = "simulation over"
        let dealer = link.withLock { $0 }
        if let frame = try? codec.encode(.disconnect(goodbye)) { try? dealer?.send([frame]) }
        Thread.sleep(forTimeInterval: 0.02)
        dealer?.close()
    }

    private func readyFrames() -> [[UInt8]] {
        var ready = Stagebeam_V1_Ready()
        ready.protocolVersion = EnvelopeCodec.protocolVersion
        ready.workerID = workerID
        ready.modelName = "simulated"
        ready.modelHash = modelHash
        ready.roles = roles
        ready.maxBatchSequences = UInt32(maxBatch)
        ready.contextTokens = 1 << 20
        ready.softwareVersion = "stagebeam simulated worker (protocol \(EnvelopeCodec.protocolVersion))"
        return [(try? codec.encode(.ready(ready))) ?? []]
    }

    private func heartbeatFrames() -> [[UInt8]] {
        var beat = Stagebeam_V1_Heartbeat()
        inFlight.withLock { inFlight in
            let used = inFlight.values.reduce(0, +)
            beat.inFlightSequences = UInt32(used)
            beat.creditsAvailable = UInt32(max(maxBatch - used, 0))
            beat.inFlightRequestIds = inFlight.keys.sorted()
        }
        return [(try? codec.encode(.heartbeat(beat))) ?? []]
    }

    private func handle(_ frames: [[UInt8]]) {
        guard frames.count == 1, let body = try? codec.decode(frames[0]) else { return }
        switch body {
        case .generateRequest(let request):
            let (candidates, seconds) = book.generate(request)
            var result = Stagebeam_V1_GenerateResult()
            result.requestID = request.requestID
            result.jobID = request.jobID
            result.workerID = workerID
            result.candidates = zip(candidates, request.seeds).map { candidate, seed in
                var wire = Stagebeam_V1_GeneratedCandidate()
                wire.text = candidate.text
                wire.tokenCount = UInt32(candidate.tokens)
                wire.finishReason = candidate.finishReason.wire
                wire.seed = seed
                return wire
            }
            let prefill = seconds - Double(candidates.map(\.tokens).max() ?? 0) * book.stepSeconds(candidates.count)
            result.prefillMs = prefill * 1000
            result.decodeMs = (seconds - prefill) * 1000
            answer(request.requestID, sequences: candidates.count, after: seconds, .generateResult(result))
        case .judgeRequest(let request):
            // Each match's verdict replayed, the matches one after another (as a real worker's
            // logprob verdicts; its written ones decode together, faster).
            let matches = request.singleMatches
            let verdicts = matches.compactMap(book.judge)
            guard verdicts.count == matches.count else {
                var refusal = ClusterError(.invalidArgument, "the search records hold no verdict to replay", requestID: request.requestID)
                refusal.jobID = request.jobID
                send(.error(refusal.wire))
                return
            }
            let answers = verdicts.map { verdict in
                var answer = Stagebeam_V1_JudgeMatchResult()
                switch verdict.reply {
                case .verdict(let text): answer.verdictText = text
                case .choiceLogprobs(let first, let second): (answer.logprobFirst, answer.logprobSecond) = (first, second)
                case .promptTooLong: break
                }
                answer.prefillMs = verdict.seconds * 1000
                return answer
            }
            var result = Stagebeam_V1_JudgeResult()
            result.requestID = request.requestID
            result.jobID = request.jobID
            result.workerID = workerID
            if request.moreMatches.isEmpty {
                (result.verdictText, result.logprobFirst, result.logprobSecond) =
                    (answers[0].verdictText, answers[0].logprobFirst, answers[0].logprobSecond)
                result.prefillMs = answers[0].prefillMs
            } else {
                result.matchResults = answers
            }
            let seconds = verdicts.map(\.seconds).reduce(0, +)
            answer(request.requestID, sequences: matches.count, after: seconds, .judgeResult(result))
        default:
            break
        }
    }

    private func answer(_ id: String, sequences: Int, after seconds: Double, _ body: Stagebeam_V1_Envelope.OneOf_Body) {
        inFlight.withLock { $0[id] = sequences }
        let done = busyUntil.withLock { free in
            free = max(free, .now) + .nanoseconds(Int64(seconds * 1e9))
            return free
        }
        Task.detached { [self] in
            try? await Task.sleep(until: done, clock: .continuous)
            inFlight.withLock { $0[id] = nil }
            send(body)
        }
    }

    private func send(_ body: Stagebeam_V1_Envelope.OneOf_Body) {
        do {
            let frame = try codec.encode(body)
            try link.withLock { $0 }?.send([frame])
        } catch {
            logger.error("cannot send a message", metadata: ["error": "\(error)"])
        }
    }
}
