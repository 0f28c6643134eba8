import Foundation

/// A service-level objective for a load test, parsed from `--slo` specs such as `latency_p99:20s`,
/// `latency_p50:800ms`, `error_rate:1%` (several may be given).
///
/// A run meets the SLO when every spec holds over the run (the latency percentile at most its bound,
/// the fraction of failed jobs at most its bound). Goodput counts the jobs that, each on its own,
/// succeeded within every latency bound (DistServe's and vLLM bench's definition), per second.
public struct SLO: Sendable, Codable, Equatable, CustomStringConvertible {
    public enum Spec: Sendable, Codable, Equatable {
        /// The `percentile` (0–100) of job latency is at most `seconds`.
        case latency(percentile: Double, seconds: Double)
        /// At most this fraction of jobs failed.
        case errorRate(Double)
    }

    public var specs: [Spec]

    public init(specs: [Spec] = []) { self.specs = specs }

    public init(parsing texts: [String]) throws {
        specs = try texts.flatMap { $0.split(separator: ",") }.map { try Self.parse(String($0).trimmingCharacters(in: .whitespaces)) }
    }

    static func parse(_ text: String) throws -> Spec {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { throw JobsError(.badSLO, "'\(text)' is not NAME:VALUE (e.g. latency_p99:20s, error_rate:1%)") }
        let (name, value) = (parts[0], parts[1])
        if name.hasPrefix("latency_p") {
            guard let percentile = Double(name.dropFirst("latency_p".count)), percentile > 0, percentile <= 100 else {
                throw JobsError(.badSLO, "'\(name)': the percentile must be a number in (0, 100], e.g. latency_p99")
            }
            return .latency(percentile: percentile, seconds: try seconds(value, in: text))
        }
        if name == "error_rate" {
            let fraction = value.hasSuffix("%") ? Double(value.dropLast()).map { $0 / 100 } : Double(value)
            guard let fraction, fraction >= 0, fraction <= 1 else {
                throw JobsError(.badSLO, "'\(text)': error_rate takes a fraction (0.01) or a percentage (1%)")
            }
            return .errorRate(fraction)
        }
        throw JobsError(.badSLO, "'\(name)' is not a known objective (latency_pNN, error_rate)")
    }

    static func seconds(_ value: String, in text: String) throws -> Double {
        let (number, scale): (Substring, Double) =
            value.hasSuffix("ms")
            ? (value.dropLast(2), 0.001)
            : value.hasSuffix("s") ? (value.dropLast(), 1) : value.hasSuffix("m") ? (value.dropLast(), 60) : (Substring(value), 1)
        guard let amount = Double(number), amount > 0 else {
            throw JobsError(.badSLO, "'\(text)': the latency bound must be a positive duration such as 20s or 800ms")
        }
        return amount * scale
    }

    /// The tightest latency bound: a job slower than this does not count toward goodput.
    public var latencyBound: Double? {
        specs.compactMap { if case .latency(_, let seconds) = $0 { seconds } else { nil } }.min()
    }

    /// Whether a run with these latencies (seconds, succeeded jobs) and counts meets every spec.
    public func met(latencies: [Double], failed: Int, total: Int) -> Bool {
        specs.allSatisfy { spec in
            switch spec {
            case .latency(let percentile, let bound):
                guard let value = Percentiles.value(latencies.sorted(), percentile) else { return false }
                return value <= bound
            case .errorRate(let bound):
                return total > 0 && Double(failed) / Double(total) <= bound
            }
        }
    }

    public var description: String {
        specs.isEmpty
            ? "none"
            : specs.map { spec in
                switch spec {
                case .latency(let percentile, let seconds): String(format: "latency_p%g ≤ %gs", percentile, seconds)
                case .errorRate(let fraction): String(format: "error_rate ≤ %g%%", fraction * 100)
                }
            }.joined(separator: ", ")
    }
}

/// Percentiles by linear interpolation between closest ranks (NumPy's default, `method="linear"`).
public enum Percentiles {
    /// `sorted` ascending; nil when empty.
    public static func value(_ sorted: [Double], _ percentile: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let position = percentile / 100 * Double(sorted.count - 1)
        let low = Int(position.rounded(.down))
        let high = min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
    }
}
