import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// How a log line looks: `text` for people, `json` for log pipelines (one object per line).
public enum LogFormat: String, CaseIterable, Sendable {
    case text, json
}

/// A swift-log handler that writes one line per event to a file descriptor (standard error):
///
///     text: 2026-11-27T18:00:00.123Z info coordinator: job finished job_id=abc seconds=1.5
///     json: {"ts":"2026-11-27T18:00:00.123Z","level":"info","component":"coordinator","msg":"job finished","job_id":"abc","seconds":1.5}
///
/// `component` is the logger's label. Metadata follows sorted by key (the logger's, then the call's,
/// which wins), nested dictionaries flattened to `outer.inner` keys; a key that would shadow one of
/// the four fixed fields is written as `meta_KEY`. In JSON, integers, finite floating-point numbers
/// and booleans logged with `.stringConvertible` stay numbers and booleans (`select(.seconds > 5)`).
/// In text, a value with spaces, quotes, `=` or control characters is quoted as a JSON string, and
/// the message's control characters are escaped, so one event is always one line.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public let label: String
    public let format: LogFormat
    private let output: LineOutput

    public init(label: String, format: LogFormat, level: Logger.Level, fileDescriptor: Int32 = STDERR_FILENO) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.output = LineOutput(fileDescriptor: fileDescriptor)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = event.metadata.map { metadata.merging($0) { _, call in call } } ?? metadata
        output.write(
            Self.line(
                at: Date(), level: event.level, component: label, message: event.message.description,
                metadata: merged, format: format))
    }

    /// One event as a line, with its newline.
    static func line(
        at date: Date, level: Logger.Level, component: String, message: String,
        metadata: Logger.Metadata, format: LogFormat
    ) -> String {
        let fields = flatten(metadata).map { (key: fixed.contains($0.key) ? "meta_\($0.key)" : $0.key, value: $0.value) }
        let time = timestamp(date)
        switch format {
        case .text:
            var line = "\(time) \(level.rawValue) \(component): \(escapedControls(message))"
            for field in fields { line += " \(field.key)=\(textValue(field.value))" }
            return line + "\n"
        case .json:
            var line =
                "{\"ts\":\"\(time)\",\"level\":\"\(level.rawValue)\",\"component\":\(jsonString(component)),\"msg\":\(jsonString(message))"
            for field in fields { line += ",\(jsonString(field.key)):\(jsonValue(field.value))" }
            return line + "}\n"
        }
    }

    private static let fixed: Set<String> = ["ts", "level", "component", "msg"]

    /// Metadata as (key, value) pairs sorted by key, dictionaries flattened into dotted keys.
    static func flatten(_ metadata: Logger.Metadata, prefix: String = "") -> [(key: String, value: Logger.MetadataValue)] {
        metadata.sorted { $0.key < $1.key }.flatMap { key, value -> [(key: String, value: Logger.MetadataValue)] in
            if case .dictionary(let nested) = value { return flatten(nested, prefix: "\(prefix)\(key).") }
            return [("\(prefix)\(key)", value)]
        }
    }

    /// ISO 8601 in UTC with milliseconds, e.g. 2026-11-27T18:00:00.123Z.
    static func timestamp(_ date: Date) -> String {
        let milliseconds = Int((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(width - digits.count, 0)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds % 1000), 3))Z"
    }

    private static func textValue(_ value: Logger.MetadataValue) -> String {
        let text: String
        switch value {
        case .array(let items): text = items.map(\.description).joined(separator: ",")
        default: text = "\(value)"
        }
        let plain =
            !text.isEmpty
            && !text.unicodeScalars.contains {
                $0 == " " || $0 == "\"" || $0 == "=" || $0.properties.generalCategory == .control
            }
        return plain ? text : jsonString(text)
    }

    private static func jsonValue(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let text): return jsonString(text)
        case .stringConvertible(let item):
            switch item {
            case let flag as Bool: return flag ? "true" : "false"
            case let number as any BinaryInteger: return "\(number)"
            case let number as Double where number.isFinite: return "\(number)"
            case let number as Float where number.isFinite: return "\(number)"
            default: return jsonString(item.description)
            }
        case .array(let items): return "[" + items.map(jsonValue).joined(separator: ",") + "]"
        // Only nested in an array: `flatten` has taken the top-level ones apart.
        case .dictionary(let nested):
            return "{" + flatten(nested).map { "\(jsonString($0.key)):\(jsonValue($0.value))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out += escaped(scalar) ?? String(scalar)
            }
        }
        return out + "\""
    }

    /// `text` with its control characters escaped (a newline as \n), nothing else changed.
    private static func escapedControls(_ text: String) -> String {
        text.unicodeScalars.map { escaped($0) ?? String($0) }.joined()
    }

    /// A control character's JSON escape; nil for any other character.
    private static func escaped(_ scalar: Unicode.Scalar) -> String? {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case _ where scalar.properties.generalCategory == .control:
            let digits = String(scalar.value, radix: 16)
            return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
        default: return nil
        }
    }
}

/// Writes whole lines to a file descriptor: one write(2) per line, under one lock shared by every
/// handler, so that lines from different threads and loggers never interleave, and nothing is held
/// in a buffer when the process dies.
struct LineOutput: Sendable {
    let fileDescriptor: Int32
    private static let lock = NSLock()

    func write(_ line: String) {
        let bytes = Array(line.utf8)
        Self.lock.withLock {
            bytes.withUnsafeBytes { buffer in
                var written = 0
                // A pipe or terminal may take part of a long line; the lock keeps the rest next to it.
                while written < buffer.count {
                    let n = Glibc.write(fileDescriptor, buffer.baseAddress! + written, buffer.count - written)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { return } // nowhere to report a failing log
                    written += n
                }
            }
        }
    }
}

extension LineLogHandler {
    /// Makes every `Logger` of this process write through a `LineLogHandler` to standard error.
    /// swift-log allows this once per process, before the first logger is made.
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: format, level: level) }
    }
}
