import Foundation
import JSON
import Synchronization

/// A batch's output file: one JSON line per finished item, and what makes a batch resumable.
///
/// - Each line goes out with one `write` of the whole line and its newline, then `fsync`, before the
///   item counts as done: a SIGKILL leaves either the whole line or (at worst, from a crash of the
///   machine mid-write) a torn tail without a newline.
/// - Opening drops such a torn tail, then reads which ids are already there and whether they
///   succeeded; a rerun skips those. Any other line that is not a result line stops the batch (it is
///   not this tool's file, or it was damaged: guessing could lose results).
/// - `retryFailed` rewrites the file without its failed lines (a new file renamed over the old, so a
///   kill during the rewrite leaves one or the other), so their items run again and each id still
///   appears once.
public final class ResultFile: Sendable {
    public let url: URL
    /// Ids already in the file, and whether each succeeded.
    public let finished: [String: Bool]
    /// The open file, held while a line is written and synced.
    private let descriptor: Mutex<Int32>

    public init(url: URL, retryFailed: Bool, log: (String) -> Void) throws {
        self.url = url
        var lines: [Data] = []
        if FileManager.default.fileExists(atPath: url.path) {
            var data: Data
            do {
                data = try Data(contentsOf: url)
            } catch {
                throw JobsError(.io, "cannot read output \(url.path): \(error.localizedDescription)")
            }
            if let last = data.last, last != UInt8(ascii: "\n") {
                let keep = (data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
                log("output \(url.path): dropping a torn last line (\(data.count - keep) bytes without a newline)")
                guard truncate(url.path, off_t(keep)) == 0 else {
                    throw JobsError(.io, "cannot truncate \(url.path): \(String(cString: strerror(errno)))")
                }
                data = data.prefix(keep)
            }
            lines = data.split(separator: UInt8(ascii: "\n")).map { Data($0) }
        }
        var finished: [String: Bool] = [:]
        var kept: [Data] = []
        for (number, line) in lines.enumerated() {
            guard let object = (try? JSONValue.parse(line, name: url.path))?.object,
                let id = object["id"]?.string, let status = object["status"]?.string
            else {
                throw JobsError(
                    .badOutput, "line \(number + 1) of \(url.path) is not a batch result line (an object with \"id\" and \"status\")")
            }
            guard finished[id] == nil else {
                throw JobsError(.badOutput, "line \(number + 1) of \(url.path) repeats id '\(id)'")
            }
            if retryFailed, status != "succeeded" { continue }
            finished[id] = status == "succeeded"
            kept.append(line)
        }
        if kept.count < lines.count {
            log("output \(url.path): removing \(lines.count - kept.count) failed item(s) to run them again")
            try Self.replace(url, with: kept)
        }
        self.finished = finished
        let descriptor = open(url.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw JobsError(.io, "cannot open \(url.path) for writing: \(String(cString: strerror(errno)))") }
        self.descriptor = Mutex(descriptor)
    }

    deinit { close(descriptor.withLock { $0 }) }

    /// Appends one result line (`line` has no newline) and makes it durable.
    public func append(_ line: Data) throws {
        var bytes = [UInt8](line)
        bytes.append(UInt8(ascii: "\n"))
        try descriptor.withLock { descriptor in
            try bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw JobsError(.io, "cannot write to \(url.path): \(String(cString: strerror(errno)))")
                    }
                    offset += written
                }
            }
            guard fsync(descriptor) == 0 else { throw JobsError(.io, "cannot fsync \(url.path): \(String(cString: strerror(errno)))") }
        }
    }

    private static func replace(_ url: URL, with lines: [Data]) throws {
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).rewrite")
        var data = Data()
        for line in lines {
            data.append(line)
            data.append(UInt8(ascii: "\n"))
        }
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw JobsError(.io, "cannot create \(temporary.path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let ok = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) == $0.count } && fsync(descriptor) == 0
        guard ok, rename(temporary.path, url.path) == 0 else {
            throw JobsError(.io, "cannot rewrite \(url.path): \(String(cString: strerror(errno)))")
        }
    }
}
