import Cluster
import ClusterTestSupport
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A parsed Prometheus text exposition: every sample by name and label set, checked as it is read
/// (TYPE before samples, one TYPE per family, cumulative histogram buckets ending in +Inf = count).
struct Exposition {
    var types: [String: String] = [:]
    /// "name{a=\"x\",b=\"y\"}" (labels in the order written) → value.
    var samples: [String: Double] = [:]

    init(_ text: String) throws {
        var buckets: [String: [(String, Double)]] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) where !line.isEmpty {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram"].contains(parts[3]) else {
                    throw ChildProcessError("bad TYPE line: \(line)")
                }
                guard types[String(parts[2])] == nil else { throw ChildProcessError("two TYPE lines for \(parts[2])") }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("# HELP ") { continue }
            guard let space = line.lastIndex(of: " ") else { throw ChildProcessError("no value: \(line)") }
            let series = String(line[..<space])
            let text = line[line.index(after: space)...]
            guard let value = text == "+Inf" ? .infinity : Double(text) else { throw ChildProcessError("bad value: \(line)") }
            let name = String(series.prefix { $0 != "{" })
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }) else {
                throw ChildProcessError("bad name: \(line)")
            }
            let family =
                ["_bucket", "_sum", "_count"].first { name.hasSuffix($0) && types[String(name.dropLast($0.count))] == "histogram" }
                .map { String(name.dropLast($0.count)) } ?? name
            guard types[family] != nil else { throw ChildProcessError("sample before its TYPE: \(line)") }
            guard samples[series] == nil else { throw ChildProcessError("repeated series: \(series)") }
            samples[series] = value
            if name.hasSuffix("_bucket"), let le = series.range(of: ",le=\"") ?? series.range(of: "{le=\"") {
                let rest = series[le.upperBound...]
                let key = String(series[..<le.lowerBound]) + "|" + String(rest.drop { $0 != "\"" }.dropFirst())
                buckets[key, default: []].append((String(rest.prefix { $0 != "\"" }), value))
            }
        }
        for (key, list) in buckets {
            guard list.last?.0 == "+Inf" else { throw ChildProcessError("\(key): buckets do not end in +Inf") }
            guard zip(list, list.dropFirst()).allSatisfy({ $0.1 <= $1.1 }) else {
                throw ChildProcessError("\(key): buckets not cumulative")
            }
        }
    }

    func value(_ series: String) -> Double? { samples[series] }

    /// Sum over every series of `name` whose labels contain all of `labels` (`k="v"` strings).
    func sum(_ name: String, _ labels: [String] = []) -> Double {
        samples.filter { key, _ in
            (key == name || key.hasPrefix(name + "{")) && labels.allSatisfy { key.contains($0) }
        }.values.reduce(0, +)
    }
}

func scrape(_ url: String) async throws -> String {
    let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
    let http = try #require(response as? HTTPURLResponse)
    #expect(http.statusCode == 200)
    #expect((http.value(forHTTPHeaderField: "Content-Type") ?? "").hasPrefix("text/plain; version=0.0.4"))
    return String(decoding: data, as: UTF8.self)
}

struct MetricsFormatTests {
    @Test func exposition() throws {
        let metrics = Metrics()
        metrics.declareCounter("x_total", "Things.\nTwo lines.")
        metrics.declareHistogram("x_seconds", "Time.", buckets: [0.1, 1])
        metrics.gauge("x_now", "Now.") { [([("worker", "a\"b")], 2.5)] }
        metrics.inc("x_total", [("kind", "k")], by: 3)
        metrics.observe("x_seconds", 0.5)
        metrics.observe("x_seconds", 5)
        let text = metrics.render()
        #expect(text.contains("# HELP x_total Things.\\nTwo lines.\n# TYPE x_total counter\nx_total{kind=\"k\"} 3\n"))
        #expect(
            text.contains(
                "x_seconds_bucket{le=\"0.1\"} 0\nx_seconds_bucket{le=\"1\"} 1\nx_seconds_bucket{le=\"+Inf\"} 2\nx_seconds_sum 5.5\nx_seconds_count 2\n"
            ))
        #expect(text.contains("x_now{worker=\"a\\\"b\"} 2.5\n"))
        let parsed = try Exposition(text)
        #expect(parsed.types == ["x_total": "counter", "x_seconds": "histogram", "x_now": "gauge"])
    }
}

/// `/metrics` of a real coordinator and two workers after a batch, scraped over HTTP and parsed;
/// the counts agree with each other and with the batch's own output.
@Suite(.serialized) struct MetricsProcessTests {
    @Test func coordinatorAndWorkerMetricsAgreeWithTheBatch() async throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.startCoordinator(endpoint: "tcp://127.0.0.1:*", extra: ["--metrics-port", "0"])
        let coordinatorURL = try cluster.coordinator.wait("the metrics line") { child in
            child.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("http://") }.map(String.init)
        }
        var workerURLs: [String] = []
        for id in ["a", "b"] {
            let worker = try cluster.addWorker(id, maxBatch: 2, extra: ["--threads", "1", "--metrics-port", "0"])
            workerURLs.append(
                try worker.wait("the metrics line") { child in
                    child.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("http://") }.map(String.init)
                })
        }
        let output = scratch.path("out.jsonl")
        let (status, _, err) = try runStagebeam(
            [
                "batch", "--coordinator", cluster.endpoint, "--input", JobsFixtures.url("text.jsonl").path, "--output", output,
                "--beam", "3", "--max-stage-tokens", "8", "--concurrency", "2"
            ], in: scratch, name: "batch")
        #expect(status == 4, "the fixture's 4 lines that are not items make the status 4\n\(err.suffix(2000))")
        let lines = try outputLines(output)
        #expect(lines.count == 6)
        func total(_ key: String) -> Double { lines.map { (($0["counts"] as? [String: Any])?[key] as? Double) ?? 0 }.reduce(0, +) }

        let coordinator = try Exposition(try await scrape(coordinatorURL))
        #expect(coordinator.value("stagebeam_jobs_accepted_total") == 6)
        #expect(coordinator.value("stagebeam_jobs_finished_total{status=\"succeeded\"}") == 6)
        #expect(coordinator.value("stagebeam_job_seconds_count") == 6)
        #expect(coordinator.value("stagebeam_jobs{state=\"succeeded\"}") == 6)
        #expect(coordinator.value("stagebeam_queue_depth") == 0)
        #expect(coordinator.value("stagebeam_tokens_generated_total") == total("generated_tokens"))
        #expect(coordinator.value("stagebeam_candidates_generated_total") == total("candidates"), "\(lines.map { $0["counts"] ?? "" })")
        #expect(coordinator.value("stagebeam_judge_calls_total") == total("judge_calls"))
        #expect(coordinator.value("stagebeam_unparsable_verdicts_total") == 0)
        #expect(coordinator.sum("stagebeam_worker_up") == 2)
        #expect(coordinator.value("stagebeam_workers{role=\"generate\"}") == 2)
        #expect(coordinator.value("stagebeam_worker_credits{worker=\"a\"}") == 2)
        // Batch sizes: never more than a worker's 2 credits.
        #expect(
            coordinator.value("stagebeam_request_sequences_bucket{kind=\"generate\",le=\"2\"}")
                == coordinator.value("stagebeam_request_sequences_count{kind=\"generate\"}"))
        #expect(coordinator.types["stagebeam_stage_seconds"] == "histogram")

        let workers = try await workerURLs.asyncMap { try Exposition(try await scrape($0)) }
        let workerTokens = workers.map { $0.value("stagebeam_worker_tokens_generated_total") ?? 0 }.reduce(0, +)
        #expect(workerTokens == total("generated_tokens"), "every candidate generated once, none re-dispatched")
        let judged = workers.map { $0.sum("stagebeam_worker_requests_total", ["kind=\"judge\"", "outcome=\"ok\""]) }.reduce(0, +)
        #expect(judged == total("judge_calls"))
        let generateRequests = workers.map { $0.sum("stagebeam_worker_requests_total", ["kind=\"generate\""]) }.reduce(0, +)
        #expect(generateRequests == coordinator.value("stagebeam_request_sequences_count{kind=\"generate\"}"))
        for worker in workers {
            #expect(worker.value("stagebeam_worker_kv_cache_capacity_tokens") == 16384)
            #expect((worker.value("stagebeam_worker_kv_cache_used_tokens") ?? 0) > 0)
            #expect(worker.value("stagebeam_worker_in_flight_sequences") == 0)
        }

        // Readiness: a worker is ready while its coordinator answers, and not once it is gone.
        func readiness(_ metricsURL: String) async -> Int? {
            let url = URL(string: metricsURL.replacingOccurrences(of: "/metrics", with: "/ready"))!
            return try? await (URLSession.shared.data(from: url).1 as? HTTPURLResponse)?.statusCode
        }
        #expect(await readiness(coordinatorURL) == 200)
        #expect(await readiness(workerURLs[0]) == 200)
        cluster.coordinator.signal(SIGKILL)
        var ready = await readiness(workerURLs[0])
        for _ in 0..<100 where ready != 503 {
            try await Task.sleep(for: .milliseconds(100))
            ready = await readiness(workerURLs[0])
        }
        #expect(ready == 503, "a worker without its coordinator is not ready")
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
