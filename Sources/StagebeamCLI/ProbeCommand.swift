import ArgumentParser
import Cluster
import Foundation
import Search
import Synchronization
import Transport
import Wire

/// Hostile traffic against a coordinator, for the hardening scripts (scripts/burst.sh,
/// scripts/soak.sh, scripts/fuzz.sh): not for users, so hidden from the help. Each prints one JSON
/// line of what it saw.
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe", abstract: "Hostile traffic against a coordinator (hardening scripts).", shouldDisplay: false,
        subcommands: [BurstProbe.self, OversizedProbe.self, FuzzProbe.self])
}

/// A value the socket threads' handlers and the command share.
private final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
}

/// A raw DEALER to the coordinator whose every reply lands in `onMessage`.
private func dealer(
    _ context: ZMQContext, _ endpoint: String, name: String, onMessage: @escaping @Sendable (Stagebeam_V1_Envelope.OneOf_Body?) -> Void
) throws -> SocketLoop {
    let codec = EnvelopeCodec()
    var random = SystemRandomNumberGenerator()
    return try SocketLoop(
        context: context,
        // No high-water mark: the whole burst goes into libzmq at once, as a hostile peer would send it.
        configuration: .init(
            kind: .dealer, connect: [endpoint], routingID: Array("\(name)-\(String(random.next(), radix: 36))".utf8), highWaterMark: 0,
            name: name),
        handlers: .init(onMessage: { frames in onMessage(frames.count == 1 ? try? codec.decode(frames[0]) : nil) }))
}

/// `probe burst`: COUNT job submissions on one connection, as fast as the socket takes them; then
/// waits until every job has its answer: a refusal, or an acceptance and then one result.
struct BurstProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "burst", abstract: "Submit many jobs at once from one peer.")

    @Option(help: "The coordinator's endpoint.") var coordinator: String
    @Option(help: "Jobs to submit.") var count = 10_000
    @Option(help: "Candidates per stage of each job.") var beam = 1
    @Option(name: .customLong("max-stage-tokens"), help: "Tokens per stage of each job.") var maxStageTokens = 4
    @Option(name: .customLong("timeout-s"), help: "Seconds to wait for every answer.") var timeoutS = 600.0

    private struct Counts: Sendable {
        var accepted = Set<String>()
        var refused: [String: Int] = [:]
        var refusedJobs = Set<String>()
        var results: [String: Int] = [:]
        var failed = 0
        var other = 0
    }

    func run() async throws {
        let context = try ZMQContext()
        let tally = Shared(Counts())
        let loop = try dealer(context, coordinator, name: "probe-burst") { body in
            tally.value.withLock { tally in
                switch body {
                case .jobAccepted(let accepted)?: tally.accepted.insert(accepted.jobID)
                case .jobResult(let result)?:
                    tally.results[result.jobID, default: 0] += 1
                    if result.status != .succeeded { tally.failed += 1 }
                case .error(let error)?:
                    tally.refused[ClusterError.name(error.code), default: 0] += 1
                    tally.refusedJobs.insert(error.jobID)
                case .heartbeat?, .jobEvent?: break
                default: tally.other += 1
                }
            }
        }
        defer { loop.close() }
        let codec = EnvelopeCodec()
        let run = UUID().uuidString.prefix(8).lowercased()
        let started = ContinuousClock.now
        for index in 0..<count {
            var config = SearchConfig()
            config.beam = beam
            config.maxStageTokens = maxStageTokens
            config.seed = UInt64(index)
            var submit = config.submitJob(question: "Burst question \(index): how many legs does a spider have?")
            submit.jobID = "burst-\(run)-\(index)"
            try loop.send([try codec.encode(.submitJob(submit))])
        }
        let sentSeconds = (ContinuousClock.now - started) / .seconds(1)
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeoutS * 1000))
        func answered(_ tally: Counts) -> Int { tally.refusedJobs.count + tally.results.count }
        while ContinuousClock.now < deadline, tally.value.withLock({ answered($0) }) < count {
            try await Task.sleep(for: .milliseconds(100))
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        let report: [String: Any] = tally.value.withLock { tally in
            [
                "sent": count, "send_seconds": sentSeconds, "seconds": seconds, "accepted": tally.accepted.count,
                "refused": tally.refused, "results": tally.results.count, "failed_results": tally.failed,
                "answered_twice": tally.results.values.filter { $0 > 1 }.count,
                "accepted_without_result": tally.accepted.subtracting(tally.results.keys).count,
                "unanswered": count - answered(tally), "unexpected_messages": tally.other
            ]
        }
        print(String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self))
    }
}

/// `probe oversized`: PEERS connections each sending one frame of BYTES bytes (larger than any
/// coordinator accepts), at once; then checks that the coordinator still answers a status request.
struct OversizedProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "oversized", abstract: "Send oversized frames from many peers.")

    @Option(help: "The coordinator's endpoint.") var coordinator: String
    @Option(help: "Peers, each with its own connection.") var peers = 8
    @Option(help: "Bytes per frame.") var bytes = 120_000_000

    func run() async throws {
        let context = try ZMQContext()
        let frame = [UInt8](repeating: 0x41, count: bytes)
        let loops = try (0..<peers).map { _ in try dealer(context, coordinator, name: "probe-oversized") { _ in } }
        for loop in loops { try loop.send([frame]) }
        // Long enough for every frame to reach the coordinator.
        while loops.contains(where: { $0.queuedCount > 0 }) { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .seconds(2))
        let client = try Client(context: context, endpoint: coordinator)
        defer { client.close() }
        let started = ContinuousClock.now
        let status = try await client.status()
        let report: [String: Any] = [
            "peers": peers, "bytes": bytes, "status_answered": true, "status_seconds": (ContinuousClock.now - started) / .seconds(1),
            "workers": status.workers.count
        ]
        for loop in loops { loop.close() }
        print(String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self))
    }
}

/// `probe fuzz`: FRAMES frames from PEERS connections, most of them valid envelopes of every kind
/// mutated at the protobuf level (see `FrameMutator`), the rest random bytes; every CHECK-EVERY
/// frames a status request must be answered within a few seconds. Deterministic for a seed.
struct FuzzProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fuzz", abstract: "Mutated protobuf envelopes at a coordinator.")

    @Option(help: "The coordinator's endpoint.") var coordinator: String
    @Option(help: "Frames to send.") var frames = 1_000_000
    @Option(help: "Peers, each with its own connection.") var peers = 4
    @Option(help: "Seed of the mutations.") var seed: UInt64 = 1
    @Option(name: .customLong("check-every"), help: "Frames between two status checks.") var checkEvery = 20_000

    func run() async throws {
        let context = try ZMQContext()
        let replies = Shared(0)
        let loops = try (0..<peers).map { _ in
            try dealer(context, coordinator, name: "probe-fuzz") { _ in replies.value.withLock { $0 += 1 } }
        }
        defer { for loop in loops { loop.close() } }
        let client = try Client(context: context, endpoint: coordinator)
        defer { client.close() }
        var mutator = FrameMutator(seed: seed)
        let started = ContinuousClock.now
        var slowestCheck = 0.0
        var checks = 0
        for index in 0..<frames {
            try loops[index % peers].send([mutator.next()])
            // Keep what waits in this process bounded: the coordinator sets the pace.
            if index % 1000 == 999 {
                while loops.reduce(0, { $0 + $1.queuedCount }) > 4000 { try await Task.sleep(for: .milliseconds(1)) }
            }
            if index % checkEvery == checkEvery - 1 || index == frames - 1 {
                let asked = ContinuousClock.now
                let status = Task { try await client.status() }
                let timeout = Task {
                    try await Task.sleep(for: .seconds(10))
                    status.cancel()
                }
                _ = try await status.value
                timeout.cancel()
                slowestCheck = max(slowestCheck, (ContinuousClock.now - asked) / .seconds(1))
                checks += 1
            }
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        let report: [String: Any] = [
            "frames": frames, "peers": peers, "seed": seed, "seconds": seconds, "frames_per_second": Double(frames) / seconds,
            "replies": replies.value.withLock { $0 }, "status_checks": checks, "slowest_status_seconds": slowestCheck,
            "mutations": mutator.counts
        ]
        print(String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self))
    }
}

/// Makes hostile frames from valid ones: each valid envelope (one of every message kind a
/// coordinator may see, with plausible contents) is parsed as protobuf wire format, fields and
/// nested messages included, and one to three mutations are applied at that level — a field's
/// value changed to an edge value, its wire type or number changed, a field dropped, duplicated or
/// truncated, a length prefix that overruns, a nested message mutated in place — before it is
/// encoded again. One frame in ten is random bytes instead.
struct FrameMutator {
    private var random: SplitMix
    private let seeds: [[UInt8]]
    private(set) var counts: [String: Int] = [:]

    init(seed: UInt64) {
        random = SplitMix(seed: seed)
        let codec = EnvelopeCodec()
        var config = SearchConfig()
        config.beam = 2
        config.maxStageTokens = 4
        var submit = config.submitJob(question: "How many legs does a spider have?")
        submit.jobID = "fuzz-job"
        submit.image = Data([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])
        var ready = Stagebeam_V1_Ready()
        ready.protocolVersion = EnvelopeCodec.protocolVersion
        ready.workerID = "fuzz-worker"
        ready.modelName = "fuzz"
        ready.modelHash = String(repeating: "ab", count: 32)
        ready.roles = [.generate, .judge]
        ready.maxBatchSequences = 4
        ready.contextTokens = 2048
        var beat = Stagebeam_V1_Heartbeat()
        beat.sequence = 3
        beat.creditsAvailable = 2
        beat.inFlightRequestIds = ["r1", "r2"]
        var generated = Stagebeam_V1_GenerateResult()
        generated.requestID = "r1"
        generated.jobID = "fuzz-job"
        var candidate = Stagebeam_V1_GeneratedCandidate()
        candidate.text = "<SUMMARY>a spider</SUMMARY>"
        candidate.tokenCount = 5
        candidate.seed = 9
        generated.candidates = [candidate, candidate]
        var judged = Stagebeam_V1_JudgeResult()
        judged.requestID = "r2"
        judged.jobID = "fuzz-job"
        judged.verdictText = "response 1"
        judged.probabilityFirst = 0.7
        var error = Stagebeam_V1_Error()
        error.code = .overloaded
        error.message = "busy"
        error.requestID = "r1"
        var goodbye = Stagebeam_V1_Disconnect()
        goodbye.reason = "fuzz"
        let bodies: [Stagebeam_V1_Envelope.OneOf_Body] = [
            .submitJob(submit), .ready(ready), .heartbeat(beat), .generateResult(generated), .judgeResult(judged), .error(error),
            .disconnect(goodbye), .statusRequest(Stagebeam_V1_StatusRequest()), .jobAccepted(Stagebeam_V1_JobAccepted())
        ]
        seeds = bodies.compactMap { try? codec.encode($0) }
    }

    mutating func next() -> [UInt8] {
        if random.below(10) == 0 {
            counts["random_bytes", default: 0] += 1
            return (0..<random.below(256)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        }
        var fields = WireField.parse(seeds[random.below(seeds.count)]) ?? []
        for _ in 0...random.below(3) { mutate(&fields, depth: 0) }
        return WireField.encode(fields)
    }

    private mutating func mutate(_ fields: inout [WireField], depth: Int) {
        guard !fields.isEmpty else {
            fields.append(WireField(number: 1 + random.below(20), wireType: 0, varint: random.next(), bytes: []))
            return count("field_added")
        }
        let index = random.below(fields.count)
        switch random.below(9) {
        case 0:
            fields[index].varint = [0, 1, UInt64.max, UInt64(UInt32.max), 1 << 63, random.next()][random.below(6)]
            fields[index].wireType = 0
            count("varint_edge")
        case 1:
            fields[index].wireType = [0, 1, 2, 3, 4, 5, 6, 7][random.below(8)]
            count("wire_type")
        case 2:
            fields[index].number = [0, 1, 2, 3, 7, 15, 16, 99, 536_870_911][random.below(9)]
            count("field_number")
        case 3:
            fields.remove(at: index)
            count("field_dropped")
        case 4:
            fields.insert(fields[index], at: random.below(fields.count + 1))
            count("field_duplicated")
        case 5:
            fields[index].bytes = Array(fields[index].bytes.prefix(random.below(fields[index].bytes.count + 1)))
            fields[index].wireType = 2
            count("bytes_truncated")
        case 6:
            fields[index].lengthOverrun = 1 + random.below(1 << 20)
            fields[index].wireType = 2
            count("length_overrun")
        case 7:
            if fields[index].wireType == 2, depth < 3, var nested = WireField.parse(fields[index].bytes), !nested.isEmpty {
                mutate(&nested, depth: depth + 1)
                fields[index].bytes = WireField.encode(nested)
                count("nested")
            } else {
                fields[index].bytes += (0..<random.below(64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                fields[index].wireType = 2
                count("bytes_extended")
            }
        default:
            fields[index].bytes = Array(String(repeating: "\u{0}\u{7f}é<SUMMARY>", count: 1 + random.below(200)).utf8)
            fields[index].wireType = 2
            count("hostile_text")
        }
    }

    private mutating func count(_ name: String) { counts[name, default: 0] += 1 }
}

/// One field of a protobuf message as the wire format lays it out (no schema needed).
struct WireField {
    var number: Int
    var wireType: Int
    var varint: UInt64
    var bytes: [UInt8]
    /// Extra length announced beyond the bytes present (a lying length prefix).
    var lengthOverrun = 0

    /// The fields of `data`, or nil when it is not well-formed wire format.
    static func parse(_ data: [UInt8]) -> [WireField]? {
        var fields: [WireField] = []
        var offset = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while offset < data.count, shift < 64 {
                let byte = data[offset]
                offset += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while offset < data.count {
            guard let key = varint(), key >> 3 > 0 else { return nil }
            let wireType = Int(key & 7)
            var field = WireField(number: Int(key >> 3), wireType: wireType, varint: 0, bytes: [])
            switch wireType {
            case 0:
                guard let value = varint() else { return nil }
                field.varint = value
            case 1, 5:
                let size = wireType == 1 ? 8 : 4
                guard offset + size <= data.count else { return nil }
                field.bytes = Array(data[offset..<offset + size])
                offset += size
            case 2:
                guard let length = varint(), length <= UInt64(data.count - offset) else { return nil }
                field.bytes = Array(data[offset..<offset + Int(length)])
                offset += Int(length)
            default:
                return nil
            }
            fields.append(field)
        }
        return fields
    }

    static func encode(_ fields: [WireField]) -> [UInt8] {
        var out: [UInt8] = []
        func varint(_ value: UInt64) {
            var value = value
            while value >= 0x80 {
                out.append(UInt8(value & 0x7f) | 0x80)
                value >>= 7
            }
            out.append(UInt8(value))
        }
        for field in fields {
            varint(UInt64(field.number) << 3 | UInt64(field.wireType & 7))
            switch field.wireType {
            case 0: varint(field.varint)
            case 2:
                varint(UInt64(field.bytes.count + field.lengthOverrun))
                out += field.bytes
            default: out += field.bytes
            }
        }
        return out
    }
}

/// A small seeded generator (SplitMix64), so a fuzz run can be repeated exactly.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { bound <= 1 ? 0 : Int(next() % UInt64(bound)) }
}
