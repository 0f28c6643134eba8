import ArgumentParser
import Foundation
import Logging
import Logs

/// `--log-format` / `--log-level` for the commands whose library code logs (coordinator, worker and
/// the clients), with `$STAGEBEAM_LOG_FORMAT` / `$STAGEBEAM_LOG_LEVEL` as fallbacks so that launch
/// scripts, systemd units and Kubernetes manifests can set them for every process at once.
struct LogOptions: ParsableArguments {
    @Option(name: .customLong("log-format"), help: "Log lines on standard error: text or json (default: $STAGEBEAM_LOG_FORMAT, else text).")
    var format: LogFormat?
    @Option(
        name: .customLong("log-level"),
        help: "Least severe level logged: trace, debug, info, notice, warning, error (default: $STAGEBEAM_LOG_LEVEL, else info).")
    var level: Logger.Level?

    func validate() throws {
        _ = try resolved()
    }

    /// The options, else the environment, else text at info.
    func resolved() throws -> (format: LogFormat, level: Logger.Level) {
        (
            try format ?? Self.environment("STAGEBEAM_LOG_FORMAT", default: .text),
            try level ?? Self.environment("STAGEBEAM_LOG_LEVEL", default: .info)
        )
    }

    /// Installs the log handler for this process: call once, first thing in `run()`.
    func bootstrap() throws {
        let (format, level) = try resolved()
        LineLogHandler.bootstrap(format: format, level: level)
    }

    private static func environment<Value: RawRepresentable<String> & CaseIterable>(_ name: String, default: Value) throws -> Value {
        guard let text = ProcessInfo.processInfo.environment[name], !text.isEmpty else { return `default` }
        guard let value = Value(rawValue: text.lowercased()) else {
            throw ValidationError("$\(name) must be one of \(Value.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
        }
        return value
    }
}

extension LogFormat: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
