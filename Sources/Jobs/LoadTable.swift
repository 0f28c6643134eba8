import Foundation

/// The console table and CSV of a load test: one row per run.
public enum LoadTable {
    static let columns = [
        "run", "profile", "method", "beam", "requests", "failed", "jobs_per_s", "latency_p50_s", "latency_p90_s",
        "latency_p99_s", "queue_p50_s", "candidate_tokens_per_s", "judge_calls_per_s", "goodput_per_s", "slo_met"
    ]

    static func cells(_ run: LoadRunResult) -> [String] {
        [
            run.name, run.profile.description, run.method, String(run.beam), String(run.requests), String(run.failed),
            String(format: "%.3f", run.jobsPerSecond), String(format: "%.3f", run.latency.p50), String(format: "%.3f", run.latency.p90),
            String(format: "%.3f", run.latency.p99), String(format: "%.3f", run.queue.p50),
            String(format: "%.1f", run.candidateTokensPerSecond), String(format: "%.2f", run.judgeCallsPerSecond),
            String(format: "%.3f", run.goodput), run.sloMet.map { $0 ? "yes" : "no" } ?? "-"
        ]
    }

    /// A fixed-width table for the console.
    public static func text(_ report: LoadReport) -> String {
        var lines = [ConsoleTable.render([columns] + report.runs.map(cells))]
        for run in report.runs where !run.workers.isEmpty {
            lines.append(
                "\(run.name) workers: "
                    + run.workers.map {
                        String(
                            format: "%@ busy %.0f%% credits %.0f%% (%llu requests)", $0.worker, $0.busy * 100, $0.creditUse * 100,
                            $0.requests)
                    }.joined(separator: " · "))
        }
        if let rate = report.saturationRate {
            lines.append(String(format: "saturation: %.3g jobs/s offered still met the objective", rate))
        }
        if let reason = report.stopReason { lines.append("sweep stopped: \(reason)") }
        return lines.joined(separator: "\n")
    }

    /// One progress line per finished run.
    static func line(_ run: LoadRunResult) -> String {
        String(
            format: "%@ · %@ · %d jobs (%d failed) · %.3f jobs/s · p50 %.2f s · p99 %.2f s · goodput %.3f/s",
            run.name, run.profile.description, run.requests, run.failed, run.jobsPerSecond, run.latency.p50, run.latency.p99, run.goodput)
    }

    /// RFC 4180 CSV with a header row.
    public static func csv(_ report: LoadReport) -> String {
        func quote(_ field: String) -> String {
            field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
                ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
        }
        return ([columns] + report.runs.map(cells)).map { $0.map(quote).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
    }

    public static func json(_ report: LoadReport) throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(report)
    }
}
