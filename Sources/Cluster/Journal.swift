import Foundation
import SwiftProtobuf
import Synchronization
import Wire

#if canImport(Glibc)
    import Glibc
#endif

/// The coordinator's append-only journal: one JSON object per line, a line per job accepted and per
/// job finished, each written and fsynced before the client hears of it (docs/invariants.md, 2:
/// nothing accepted is lost). Writes are grouped: `JournalWriter` fsyncs everything appended since
/// its last fsync at once, off the caller's thread, and calls back when a record is durable.
/// Replaying it after a restart gives every job ever accepted, with the
/// result of those that finished; the others are run again (the search is deterministic by seed,
/// so the re-run gives the same answer).
///
/// In between, a "step" line records each generate or judge answer a job received, keyed by a hash
/// of the request. A re-run asks the same requests in the same order (determinism again) and takes
/// the recorded answers instead of recomputing them, so the stages finished before a crash are not
/// redone. Step lines are not fsynced: one lost in a crash only costs its recomputation.
///
/// A line carries the job's messages as base64 protobuf (exact, and the schema's compatibility
/// rules apply) next to a few readable fields for people reading the file, and the time it was
/// written. The file holds every question and image, so it is readable by its owner only (0600),
/// and one coordinator at a time holds it (`JournalLock`). With a retention, `compact` rewrites it
/// without the jobs that finished longer ago than that; unfinished jobs are always kept.
public final class Journal: Sendable {
    struct Line: Codable {
        var event: String // "accepted", "step" or "finished"
        var jobID: String
        var time: Date?
        var question: String?
        var status: String?
        var answer: String?
        var submit: Data? // Stagebeam_V1_SubmitJob (accepted)
        var result: Data? // Stagebeam_V1_JobResult with the full search record (finished)
        var key: String? // step: the request's hash
        var value: Data? // step: the answer (JSON of the search's types)

        enum CodingKeys: String, CodingKey {
            case event, time, question, status, answer, submit, result, key, value
            case jobID = "job_id"
        }
    }

    /// A job as the journal knows it.
    public struct Entry: Sendable {
        public var submit: Stagebeam_V1_SubmitJob
        public var result: Stagebeam_V1_JobResult?
        /// Answers the job received before the journal was last closed, by request hash.
        public var steps: [String: Data] = [:]
        /// When it finished (nil: unfinished, or a line written before lines carried their time).
        public var finishedAt: Date?
    }

    public let url: URL
    /// Finished jobs older than this are dropped by `compact` (nil: kept for ever).
    public let retain: Duration?
    private let lock: JournalLock
    private let writer: JournalWriter

    /// Opens (creating if needed) the journal at `url` and returns it with the jobs it holds, in
    /// the order they were accepted. A torn last line (the process died mid-write) is skipped with a
    /// warning through `log`; any other unreadable line is an error naming its number. Fails when
    /// another process holds the journal. With `retain`, the file is first compacted as of `now`.
    public static func open(
        _ url: URL, retain: Duration? = nil, now: Date = Date(), log: (String) -> Void
    ) throws -> (Journal, [(id: String, entry: Entry)]) {
        let lock = try JournalLock(journal: url)
        do {
            let existing = FileManager.default.fileExists(atPath: url.path) ? try Data(contentsOf: url) : Data()
            var replayed = try replay(existing, path: url.path, log: log)
            let fd = try openForAppend(url)
            let journal = Journal(url: url, retain: retain, lock: lock, fd: fd)
            // A torn tail would glue itself to the next line: end it first.
            if let last = existing.last, last != UInt8(ascii: "\n") { try journal.appendAndWait(Data("\n".utf8)) }
            if retain != nil {
                let dropped = try journal.compact(replayed, now: now)
                if !dropped.isEmpty {
                    log("journal \(url.path): dropped \(dropped.count) jobs finished more than \(retain!) ago")
                    replayed.order.removeAll { dropped.contains($0) }
                }
            }
            return (journal, replayed.order.map { ($0, replayed.entries[$0]!) })
        } catch {
            lock.release()
            throw error
        }
    }

    /// Records written and fsyncs made since opening (their ratio is the size of a group commit).
    public var writes: (records: Int, syncs: Int) { writer.counters.withLock { $0 } }

    private init(url: URL, retain: Duration?, lock: JournalLock, fd: Int32) {
        self.url = url
        self.retain = retain
        self.lock = lock
        self.writer = JournalWriter(fd: fd, path: url.path)
    }

    /// Writes what is queued and closes the file (the lock goes with the journal). Idempotent.
    public func close() {
        writer.close()
    }

    deinit {
        writer.close()
        lock.release()
    }

    /// Appends a job's acceptance; `whenDurable` runs (on the writer thread) once it is fsynced, or
    /// with the error that kept it from being written.
    public func accepted(
        _ jobID: String, submit: Stagebeam_V1_SubmitJob, whenDurable: @escaping @Sendable ((any Error)?) -> Void
    ) throws {
        try append(
            Line(event: "accepted", jobID: jobID, time: Date(), question: submit.question, submit: try submit.serializedData()),
            whenDurable: whenDurable)
    }

    /// Appends a job's result; `whenDurable` as for `accepted`.
    public func finished(
        _ jobID: String, result: Stagebeam_V1_JobResult, whenDurable: @escaping @Sendable ((any Error)?) -> Void
    ) throws {
        let status = Job.State(finished: result.status).rawValue
        try append(
            Line(
                event: "finished", jobID: jobID, time: Date(), status: status, answer: result.answer,
                result: try result.serializedData()),
            whenDurable: whenDurable)
    }

    /// Records an answer of a job's request (see `JobSteps`); not fsynced on its own account.
    func step(_ jobID: String, key: String, value: Data) throws {
        try append(Line(event: "step", jobID: jobID, key: key, value: value), whenDurable: nil)
    }

    /// Rewrites the journal without the jobs that finished more than `retain` before `now` (and
    /// without the step lines of finished jobs, which a replay does not use); returns the ids
    /// dropped. Unfinished jobs and everything newer are kept, line for line. The new file replaces
    /// the old one by a rename, so a crash leaves one or the other whole.
    @discardableResult
    public func compact(now: Date = Date()) throws -> Set<String> {
        guard let retain else { return [] }
        // The work captures values only: the writer thread must never hold the journal itself.
        let url = url
        return try onWriter { fd in
            let replayed = try Self.replay(try Data(contentsOf: url), path: url.path) { _ in }
            return try Self.rewrite(url, replayed, retain: retain, now: now, fd: &fd)
        }
    }

    private func compact(_ replayed: Replayed, now: Date) throws -> Set<String> {
        guard let retain else { return [] }
        let url = url
        return try onWriter { fd in try Self.rewrite(url, replayed, retain: retain, now: now, fd: &fd) }
    }

    /// Runs `body` on the writer thread, after everything appended before, and waits for it.
    private func onWriter<T: Sendable>(_ body: @escaping @Sendable (inout Int32) throws -> T) throws -> T {
        let outcome = Awaited<Result<T, any Error>>()
        writer.enqueue(.exclusive { fd in outcome.fulfill(Result(catching: { try body(&fd) })) })
        return try outcome.wait().get()
    }

    private static func rewrite(_ url: URL, _ replayed: Replayed, retain: Duration, now: Date, fd: inout Int32) throws -> Set<String> {
        let limit = now.addingTimeInterval(-Double(retain.components.seconds))
        var dropped: Set<String> = []
        var kept = Data()
        var stepsDropped = false
        for id in replayed.order {
            let entry = replayed.entries[id]!
            if entry.result != nil, (entry.finishedAt ?? .distantPast) < limit {
                dropped.insert(id)
                continue
            }
            for line in replayed.lines[id]! {
                if entry.result != nil && line.isStep {
                    stepsDropped = true
                    continue
                }
                kept.append(line.bytes)
                kept.append(UInt8(ascii: "\n"))
            }
        }
        guard !dropped.isEmpty || stepsDropped else { return [] }
        let temporary = url.path + ".compacting"
        let newFD = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard newFD >= 0 else {
            throw ClusterError(.internal, "cannot compact journal \(url.path): \(temporary): \(String(cString: strerror(errno)))")
        }
        do {
            try JournalWriter.writeAll(kept, to: newFD, path: temporary)
            guard fsync(newFD) == 0 else { throw ClusterError(.internal, "cannot fsync \(temporary): \(String(cString: strerror(errno)))") }
            guard rename(temporary, url.path) == 0 else {
                throw ClusterError(.internal, "cannot replace journal \(url.path): \(String(cString: strerror(errno)))")
            }
        } catch {
            Glibc.close(newFD)
            unlink(temporary)
            throw error
        }
        Glibc.close(newFD)
        syncDirectory(of: url)
        let appendFD = try openForAppend(url)
        Glibc.close(fd)
        fd = appendFD
        return dropped
    }

    private func append(_ line: Line, whenDurable: (@Sendable ((any Error)?) -> Void)?) throws {
        var data = try Self.encoder.encode(line)
        data.append(UInt8(ascii: "\n"))
        writer.enqueue(.append(data, durable: whenDurable != nil, done: whenDurable))
    }

    /// Appends `data` durably and waits until it is.
    private func appendAndWait(_ data: Data) throws {
        let failure = Awaited<(any Error)?>()
        writer.enqueue(.append(data, durable: true, done: { failure.fulfill($0) }))
        if let error = failure.wait() { throw error }
    }

    /// Opens for appending, owner-only; a journal created before files were made 0600 is tightened.
    private static func openForAppend(_ url: URL) throws -> Int32 {
        let fd = Glibc.open(url.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, fchmod(fd, 0o600) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { Glibc.close(fd) }
            throw ClusterError(.internal, "cannot open journal \(url.path): \(reason)")
        }
        return fd
    }

    /// A rename is durable once its directory is synced.
    private static func syncDirectory(of url: URL) {
        let fd = Glibc.open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        Glibc.close(fd)
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    /// The journal's jobs in acceptance order, and each job's lines as written.
    struct Replayed {
        struct RawLine {
            var bytes: Data
            var isStep: Bool
        }
        var order: [String] = []
        var entries: [String: Entry] = [:]
        var lines: [String: [RawLine]] = [:]
    }

    static func replay(_ data: Data, path: String, log: (String) -> Void) throws -> Replayed {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var replayed = Replayed()
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
                if replayed.entries[line.jobID] == nil { replayed.order.append(line.jobID) }
                replayed.entries[line.jobID] = Entry(submit: try Stagebeam_V1_SubmitJob(serializedBytes: bytes))
            case "step":
                guard let key = line.key, let value = line.value, replayed.entries[line.jobID] != nil else {
                    throw ClusterError(.internal, "journal \(path) line \(number + 1): step without key, value or accepted job")
                }
                replayed.entries[line.jobID]?.steps[key] = value
            case "finished":
                guard let bytes = line.result, replayed.entries[line.jobID] != nil else {
                    throw ClusterError(.internal, "journal \(path) line \(number + 1): finished without result or without being accepted")
                }
                replayed.entries[line.jobID]?.result = try Stagebeam_V1_JobResult(serializedBytes: bytes)
                replayed.entries[line.jobID]?.finishedAt = line.time
            default:
                throw ClusterError(.internal, "journal \(path) line \(number + 1): unknown event '\(line.event)'")
            }
            replayed.lines[line.jobID, default: []].append(.init(bytes: Data(bytes), isStep: line.event == "step"))
        }
        return replayed
    }
}
