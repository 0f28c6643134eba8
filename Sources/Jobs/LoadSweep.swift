import Foundation

/// A sweep: runs at rising Poisson rates (start, start × factor, …) until a run breaks the SLO —
/// or, without an SLO, until jobs fail or the cluster falls behind (finishes under 80 % of the
/// offered rate) — bounded by `maxSteps` runs and `maxSeconds` in all.
public struct LoadSweep: Sendable {
    public var startRate: Double
    public var factor: Double
    public var maxSteps: Int
    public var maxSeconds: Double

    public init(startRate: Double, factor: Double, maxSteps: Int, maxSeconds: Double) throws {
        guard startRate > 0, factor > 1, maxSteps >= 1, maxSeconds > 0 else {
            throw JobsError(.invalidArgument, "a sweep needs start rate > 0, factor > 1, at least 1 step and a positive time bound")
        }
        self.startRate = startRate
        self.factor = factor
        self.maxSteps = maxSteps
        self.maxSeconds = maxSeconds
    }

    /// Runs the sweep; returns its runs, the highest rate that held, and why it stopped.
    public func run(
        on runner: LoadRunner, limits: LoadRunner.Limits, settings: BatchJobSettings, slo: SLO, label: String,
        log: (String) -> Void
    ) async throws -> (runs: [LoadRunResult], saturation: Double?, reason: String) {
        let start = ContinuousClock.now
        var runs: [LoadRunResult] = []
        var saturation: Double?
        var rate = startRate
        for step in 0..<maxSteps {
            if seconds(since: start) >= maxSeconds { return (runs, saturation, "time bound (\(maxSeconds) s) reached") }
            let result = try await runner.run(
                name: "\(label)step \(step + 1)", profile: .rate(rate), limits: limits, settings: settings, slo: slo)
            runs.append(result)
            log(LoadTable.line(result))
            if let broken = Self.breach(result, slo: slo) {
                return (runs, saturation, String(format: "rate %.3g/s: %@", rate, broken))
            }
            saturation = rate
            rate *= factor
        }
        return (runs, saturation, "step bound (\(maxSteps) runs) reached")
    }

    /// Why a run counts as past saturation, or nil.
    static func breach(_ run: LoadRunResult, slo: SLO) -> String? {
        if run.sloMet == false { return "SLO (\(slo)) broken" }
        if slo.specs.isEmpty {
            if run.failed > 0 { return "\(run.failed) job(s) failed" }
            if case .rate(let rate) = run.profile, run.jobsPerSecond < 0.8 * rate {
                return String(format: "finished %.3g jobs/s, under 80%% of the offered rate", run.jobsPerSecond)
            }
        }
        return nil
    }
}
