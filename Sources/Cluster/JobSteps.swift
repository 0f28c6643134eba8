import Foundation
import Logging
import Synchronization
import Wire

/// A job's answers from workers, recorded in the journal as they arrive. After a restart, the job's
/// search runs again and asks the same requests (it is deterministic); those already answered before
/// the crash are taken from here instead of being computed again.
///
/// Keys hash the request's content, so a recorded answer is only ever used for the very request it
/// answered; within one run the same request (same prefix and seeds, or same prompt and seed) always
/// gets the same answer anyway.
final class JobSteps: Sendable {
    let jobID: String
    private let journal: Journal
    private let logger: Logger
    /// Answers by request key, and how many were taken from the journal.
    private let state: Mutex<(recorded: [String: Data], reused: Int)>

    init(jobID: String, journal: Journal, recorded: [String: Data], logger: Logger) {
        self.jobID = jobID
        self.journal = journal
        self.state = Mutex((recorded, 0))
        self.logger = logger
    }

    /// Answers taken from the journal so far.
    var reused: Int { state.withLock { $0.reused } }

    func answer<Request: Encodable, Answer: Codable & Sendable>(
        _ kind: String, for request: Request, compute: () async throws -> Answer
    ) async throws -> Answer {
        let key = try Self.key(kind, request)
        if let data = state.withLock({ $0.recorded[key] }), let answer = try? Self.decoder.decode(Answer.self, from: data) {
            state.withLock { $0.reused += 1 }
            return answer
        }
        let answer = try await compute()
        record(answer, key: key)
        return answer
    }

    /// `answer` for several requests at once: those not answered yet (their indices) are computed
    /// together by `compute`, which returns their answers in that order.
    func answers<Request: Encodable, Answer: Codable & Sendable>(
        _ kind: String, for requests: [Request], compute: ([Int]) async throws -> [Answer]
    ) async throws -> [Answer] {
        let keys = try requests.map { try Self.key(kind, $0) }
        var answers = [Answer?](repeating: nil, count: requests.count)
        for (k, key) in keys.enumerated() {
            if let data = state.withLock({ $0.recorded[key] }), let answer = try? Self.decoder.decode(Answer.self, from: data) {
                answers[k] = answer
                state.withLock { $0.reused += 1 }
            }
        }
        let missing = answers.indices.filter { answers[$0] == nil }
        if !missing.isEmpty {
            let computed = try await compute(missing)
            for (k, answer) in zip(missing, computed) {
                answers[k] = answer
                record(answer, key: keys[k])
            }
        }
        return answers.map { $0! }
    }

    private func record(_ answer: some Encodable, key: String) {
        do {
            let data = try Self.encoder.encode(answer)
            state.withLock { $0.recorded[key] = data }
            try journal.step(jobID, key: key, value: data)
        } catch {
            // Losing a step only costs recomputing it after a crash.
            logger.error("cannot journal a step", metadata: ["job_id": "\(jobID)", "error": "\(error)"])
        }
    }

    static func key(_ kind: String, _ request: some Encodable) throws -> String {
        var hasher = SHA256()
        hasher.update(Array(kind.utf8))
        hasher.update(try encoder.encode(request))
        return ContentHash.hex(hasher.finalize())
    }

    /// Sorted keys make equal requests encode to equal bytes; log-probabilities may be −∞.
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }()
}
