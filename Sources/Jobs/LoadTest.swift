import Foundation

/// A whole load test: one profile, or a sweep, for each beam width asked for; and its report files.
public enum LoadTest {
    public enum Mode: Sendable {
        case profile(LoadProfile)
        case sweep(LoadSweep)
    }

    public static func run(
        runner: LoadRunner, mode: Mode, beams: [Int], limits: LoadRunner.Limits, settings: BatchJobSettings, slo: SLO,
        coordinator: String, log: (String) -> Void
    ) async throws -> LoadReport {
        var report = LoadReport(
            coordinator: coordinator, started: Date().formatted(.iso8601), slo: slo.description,
            latencyBound: slo.latencyBound, runs: [])
        var saturation: [String] = []
        for beam in beams {
            var settings = settings
            settings.choices.beam = beam
            let label = beams.count > 1 ? "beam \(beam) " : ""
            switch mode {
            case .profile(let profile):
                let result = try await runner.run(name: "\(label)run", profile: profile, limits: limits, settings: settings, slo: slo)
                log(LoadTable.line(result))
                report.runs.append(result)
            case .sweep(let sweep):
                let outcome = try await sweep.run(on: runner, limits: limits, settings: settings, slo: slo, label: label, log: log)
                report.runs += outcome.runs
                if beams.count == 1 { report.saturationRate = outcome.saturation }
                saturation.append(
                    label + outcome.reason + (outcome.saturation.map { String(format: " (held at %.3g/s)", $0) } ?? " (no rate held)"))
            }
        }
        if !saturation.isEmpty { report.stopReason = saturation.joined(separator: "; ") }
        return report
    }

    /// Writes PREFIX.json, PREFIX.csv and PREFIX.html; returns their paths.
    public static func write(_ report: LoadReport, prefix: String) throws -> [String] {
        let paths = ["json", "csv", "html"].map { "\(prefix).\($0)" }
        do {
            try LoadTable.json(report).write(to: URL(fileURLWithPath: paths[0]))
            try Data(LoadTable.csv(report).utf8).write(to: URL(fileURLWithPath: paths[1]))
            try Data(LoadHTML.page(report).utf8).write(to: URL(fileURLWithPath: paths[2]))
        } catch {
            throw JobsError(.io, "cannot write the report \(prefix).*: \(error.localizedDescription)")
        }
        return paths
    }

    /// Whether `endpoint` is on this machine or a private network (RFC 1918, link-local, ULA): a load
    /// test is meant for one's own cluster and test hosts.
    public static func isLocalOrPrivate(_ endpoint: String) -> Bool {
        guard let range = endpoint.range(of: "://") else { return false }
        var host = String(endpoint[range.upperBound...])
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix { $0 != "]" }).lowercased()
            return host == "::1" || host.hasPrefix("fe80:") || host.hasPrefix("fc") || host.hasPrefix("fd")
        }
        host = String(host.prefix { $0 != ":" })
        if host == "localhost" { return true }
        let octets = host.split(separator: ".").compactMap { UInt8($0) }
        guard octets.count == 4 else { return false }
        switch (octets[0], octets[1]) {
        case (127, _), (10, _), (192, 168), (169, 254): return true
        case (172, 16...31): return true
        default: return false
        }
    }
}
