import Foundation
import SwiftProtobuf
import Wire

#if canImport(Glibc)
    import Glibc
#endif

/// The coordinator's append-only journal: one JSON object per line, a line per job accepted and per
/// job finished, each written and fsynced before the client hears of it (docs/invariants.md, 2:
/// nothing accepted is lost). Replaying it after a restart gives every job ever accepted, with the
/// result of those that finished; the others are run again (the search is deterministic by seed,
/// so the re-run gives the same answer).
///
/// In between, a "step" line records each generate or judge answer a job received, keyed by a hash
/// of the request. A re-run asks the same requests in the same order (determinism again) and takes
/// the recorded answers instead of recomputing them, so the stages finished before a crash are not
/// redone. Step lines are not fsynced: one lost in a crash only costs its recomputation.
///
/// A line carries the job's messages as base64 protobuf (exact, and the schema's compatibility
/// rules apply) next to a few readable fields for people reading the file.
public final class Journal: @unchecked Sendable {
    struct Line: Codable {
        var event: String // "accepted", "step" or "finished"
        var jobID: String
        var question: String?
        var status: String?
        var answer: String?
        var submit: Data? // Stagebeam_V1_SubmitJob (accepted)
        var result: Data? // Stagebeam_V1_JobResult with the full search record (finished)
        var key: String? // step: the request's hash
        var value: Data? // step: the answer (JSON of the search's types)

        enum CodingKeys: String, CodingKey {
            case event, question, status, answer, submit, result, key, value
            case jobID = "job_id"
        }
    }

    /// A job as the journal knows it.
    public struct Entry: Sendable {
        public var submit: Stagebeam_V1_SubmitJob
        public var result: Stagebeam_V1_JobResult?
        /// Answers the job received before the journal was last closed, by request hash.
        public var steps: [String: Data] = [:]
    }

    public let url: URL
    private let fd: Int32
    private let lock = NSLock()

    /// Opens (creating if needed) the journal at `url` and returns it with the jobs it holds, in
    /// the order they were accepted. A torn last line (the process died mid-write) is skipped with a
    /// warning through `log`; any other unreadable line is an error naming its number.
    public static func open(_ url: URL, log: (String) -> Void) throws -> (Journal, [(id: String, entry: Entry)]) {
        let existing = FileManager.default.fileExists(atPath: url.path) ? try Data(contentsOf: url) : Data()
        let entries = try replay(existing, path: url.path, log: log)
        let fd = Glibc.open(url.path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else {
            throw ClusterError(.internal, "cannot open journal \(url.path): \(String(cString: strerror(errno)))")
        }
        let journal = Journal(url: url, fd: fd)
        // A torn tail would glue itself to the next line: end it first.
        if let last = existing.last, last != UInt8(ascii: "\n") { try journal.write(Data("\n".utf8), sync: true) }
        return (journal, entries)
    }

    private init(url: URL, fd: Int32) {
        self.url = url
        self.fd = fd
    }

    deinit { close(fd) }

    public func accepted(_ jobID: String, submit: Stagebeam_V1_SubmitJob) throws {
        try append(Line(event: "accepted", jobID: jobID, question: submit.question, submit: try submit.serializedData()))
    }

    public func finished(_ jobID: String, result: Stagebeam_V1_JobResult) throws {
        let status = result.status == .succeeded ? "succeeded" : "failed"
        try append(
            Line(
                event: "finished", jobID: jobID, status: status, answer: result.answer,
                result: try result.serializedData()))
    }

    /// Records an answer of a job's request (see `JobSteps`).
    func step(_ jobID: String, key: String, value: Data) throws {
        try append(Line(event: "step", jobID: jobID, key: key, value: value), sync: false)
    }

    private func append(_ line: Line, sync: Bool = true) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(line)
        data.append(UInt8(ascii: "\n"))
        try write(data, sync: sync)
    }

    private func write(_ data: Data, sync: Bool) throws {
        try lock.withLock {
            // O_APPEND: one write call puts the whole line at the end, even if it is short-written
            // nothing else interleaves, since this lock serialises writers.
            var written = 0
            while written < data.count {
                let n = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, data.count - written) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw ClusterError(.internal, "cannot write journal \(url.path): \(String(cString: strerror(errno)))")
                }
                written += n
            }
            if sync && fsync(fd) != 0 {
                throw ClusterError(.internal, "cannot fsync journal \(url.path): \(String(cString: strerror(errno)))")
            }
        }
    }

    static func replay(_ data: Data, path: String, log: (String) -> Void) throws -> [(id: String, entry: Entry)] {
        let decoder = JSONDecoder()
        var order: [String] = []
        var entries: [String: Entry] = [:]
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (number, bytes) in lines.enumerated() where !bytes.isEmpty {
            let isLast = number == lines.count - 1
            let line: Line
            do {
                line = try decoder.decode(Line.self, from: Data(bytes))
            } catch {
                // Only the final line can be torn by a crash (no newline was written after it).
                if isLast {
                    log("journal \(path): skipping a torn last line (\(bytes.count) bytes)")
                    continue
                }
                throw ClusterError(.internal, "journal \(path) line \(number + 1) is not a journal record: \(error)")
            }
            switch line.event {
            case "accepted":
                guard let bytes = line.submit else {
                    throw ClusterError(.internal, "journal \(path) line \(number + 1): accepted without submit")
                }
                if entries[line.jobID] == nil { order.append(line.jobID) }
                entries[line.jobID] = Entry(submit: try Stagebeam_V1_SubmitJob(serializedBytes: bytes))
            case "step":
                guard let key = line.key, let value = line.value, entries[line.jobID] != nil else {
                    throw ClusterError(.internal, "journal \(path) line \(number + 1): step without key, value or accepted job")
                }
                entries[line.jobID]?.steps[key] = value
            case "finished":
                guard let bytes = line.result, entries[line.jobID] != nil else {
                    throw ClusterError(.internal, "journal \(path) line \(number + 1): finished without result or without being accepted")
                }
                entries[line.jobID]?.result = try Stagebeam_V1_JobResult(serializedBytes: bytes)
            default:
                throw ClusterError(.internal, "journal \(path) line \(number + 1): unknown event '\(line.event)'")
            }
        }
        return order.map { ($0, entries[$0]!) }
    }
}
