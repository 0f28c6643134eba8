import Foundation
import Synchronization

/// Prometheus metrics of one process, rendered in the text exposition format (version 0.0.4).
///
/// Counters and histograms are updated where things happen (`inc`, `observe`); gauges, and counters
/// a component already keeps, are read when scraped (`gauge`/`counter` with a sampling closure), so
/// the hot paths do nothing for them. Thread-safe.
public final class Metrics: Sendable {
    public typealias Labels = [(String, String)]

    enum Kind: String { case counter, gauge, histogram }

    private struct Family {
        let name: String
        let help: String
        let kind: Kind
        let buckets: [Double]
        /// Stored series by rendered label set: a value (counter) or bucket counts + sum + count.
        var values: [String: Double] = [:]
        var histograms: [String: (counts: [UInt64], sum: Double, count: UInt64)] = [:]
        /// Read at scrape time instead.
        var sample: (@Sendable () -> [(Labels, Double)])?

        init(name: String, help: String, kind: Kind, buckets: [Double] = [], sample: (@Sendable () -> [(Labels, Double)])? = nil) {
            self.name = name
            self.help = help
            self.kind = kind
            self.buckets = buckets
            self.sample = sample
        }
    }

    /// The families in declaration order, and each one's index by name.
    private struct Registry {
        var families: [Family] = []
        var byName: [String: Int] = [:]
    }
    private let registry = Mutex(Registry())

    public init() {}

    /// Seconds buckets from 5 ms to 10 minutes, for request, stage and job latencies.
    public static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600]
    /// Sequences per request (batch sizes).
    public static let sizeBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64]

    // MARK: Declaring

    public func declareCounter(_ name: String, _ help: String) { declare(Family(name: name, help: help, kind: .counter)) }

    public func declareHistogram(_ name: String, _ help: String, buckets: [Double]) {
        declare(Family(name: name, help: help, kind: .histogram, buckets: buckets.sorted()))
    }

    /// A gauge read at scrape time.
    public func gauge(_ name: String, _ help: String, _ sample: @escaping @Sendable () -> [(Labels, Double)]) {
        declare(Family(name: name, help: help, kind: .gauge, sample: sample))
    }

    /// A counter that something else keeps, read at scrape time.
    public func counter(_ name: String, _ help: String, _ sample: @escaping @Sendable () -> [(Labels, Double)]) {
        declare(Family(name: name, help: help, kind: .counter, sample: sample))
    }

    private func declare(_ family: Family) {
        registry.withLock { registry in
            precondition(registry.byName[family.name] == nil, "metric \(family.name) declared twice")
            registry.byName[family.name] = registry.families.count
            registry.families.append(family)
        }
    }

    // MARK: Updating

    public func inc(_ name: String, _ labels: Labels = [], by amount: Double = 1) {
        registry.withLock { registry in
            guard let index = registry.byName[name], registry.families[index].kind == .counter, registry.families[index].sample == nil
            else { return }
            registry.families[index].values[Self.render(labels), default: 0] += amount
        }
    }

    public func observe(_ name: String, _ value: Double, _ labels: Labels = []) {
        registry.withLock { registry in
            guard let index = registry.byName[name], registry.families[index].kind == .histogram else { return }
            let key = Self.render(labels)
            let buckets = registry.families[index].buckets
            var series = registry.families[index].histograms[key] ?? (Array(repeating: 0, count: buckets.count), 0, 0)
            for (i, bound) in buckets.enumerated() where value <= bound { series.counts[i] += 1 }
            series.sum += value
            series.count += 1
            registry.families[index].histograms[key] = series
        }
    }

    // MARK: Exposition

    /// The text exposition format: `# HELP`, `# TYPE`, then one line per series.
    public func render() -> String {
        // A copy of the registry (values, not references): sampling closures may take other locks,
        // so they run outside this one.
        let families = registry.withLock { $0.families }
        let sampled = families.map { family in (family, family.sample?()) }
        do {
            var out = ""
            for (family, samples) in sampled {
                out += "# HELP \(family.name) \(Self.escapeHelp(family.help))\n# TYPE \(family.name) \(family.kind.rawValue)\n"
                if let samples {
                    for (labels, value) in samples { out += "\(family.name)\(Self.render(labels)) \(Self.number(value))\n" }
                } else if family.kind == .histogram {
                    for (key, series) in family.histograms.sorted(by: { $0.key < $1.key }) {
                        for (bound, count) in zip(family.buckets, series.counts) {
                            out += "\(family.name)_bucket\(Self.adding("le", Self.number(bound), to: key)) \(count)\n"
                        }
                        out += "\(family.name)_bucket\(Self.adding("le", "+Inf", to: key)) \(series.count)\n"
                        out += "\(family.name)_sum\(key) \(Self.number(series.sum))\n\(family.name)_count\(key) \(series.count)\n"
                    }
                } else {
                    for (key, value) in family.values.sorted(by: { $0.key < $1.key }) {
                        out += "\(family.name)\(key) \(Self.number(value))\n"
                    }
                }
            }
            return out
        }
    }

    static func render(_ labels: Labels) -> String {
        labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(escapeValue($0.1))\"" }.joined(separator: ",") + "}"
    }

    static func adding(_ name: String, _ value: String, to key: String) -> String {
        key.isEmpty ? "{\(name)=\"\(value)\"}" : String(key.dropLast()) + ",\(name)=\"\(value)\"}"
    }

    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    static func escapeValue(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(
            of: "\n", with: "\\n")
    }

    static func escapeHelp(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }
}
