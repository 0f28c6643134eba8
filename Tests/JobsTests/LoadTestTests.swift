import ClusterTestSupport
import Foundation
import Testing

@testable import Jobs

struct SLOTests {
    @Test func specsParse() throws {
        let slo = try SLO(parsing: ["latency_p99:20s,error_rate:1%", "latency_p50:800ms"])
        #expect(slo.specs == [.latency(percentile: 99, seconds: 20), .errorRate(0.01), .latency(percentile: 50, seconds: 0.8)])
        #expect(slo.latencyBound == 0.8)
        #expect(slo.met(latencies: [0.1, 0.2, 0.3], failed: 0, total: 3))
        #expect(!slo.met(latencies: [0.1, 0.9, 1.0], failed: 0, total: 3))
        #expect(!slo.met(latencies: [0.1, 0.2], failed: 1, total: 3))
    }

    @Test func badSpecsNameTheProblem() {
        for (text, words) in [
            ("latency:20s", "not a known objective"), ("latency_p99", "NAME:VALUE"), ("latency_p0:1s", "percentile"),
            ("latency_p99:fast", "positive duration"), ("error_rate:150%", "fraction")
        ] {
            #expect { try SLO(parsing: [text]) } throws: { error in
                (error as? JobsError)?.code == .badSLO && "\(error)".contains(words)
            }
        }
    }

    /// NumPy's default (linear) percentiles: np.percentile([1, 2, 3, 4], [50, 90, 99]) = 2.5, 3.7, 3.97.
    @Test func percentilesInterpolateLikeNumPy() {
        let values: [Double] = [1, 2, 3, 4]
        #expect(Percentiles.value(values, 50) == 2.5)
        #expect(abs(Percentiles.value(values, 90)! - 3.7) < 1e-12)
        #expect(abs(Percentiles.value(values, 99)! - 3.97) < 1e-12)
        #expect(Percentiles.value([], 50) == nil)
    }

    @Test func loadTestsStayOnLocalOrPrivateNetworks() {
        for endpoint in [
            "tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://10.1.2.3:5555", "tcp://172.20.0.1:5", "tcp://192.168.1.9:5", "tcp://[::1]:5"
        ] {
            #expect(LoadTest.isLocalOrPrivate(endpoint), "\(endpoint)")
        }
        for endpoint in ["tcp://8.8.8.8:5555", "tcp://172.32.0.1:5", "tcp://example.com:5555", "garbage"] {
            #expect(!LoadTest.isLocalOrPrivate(endpoint), "\(endpoint)")
        }
    }
}

/// `stagebeam loadtest` against a real local cluster (a coordinator and two workers).
@Suite(.serialized) struct LoadTestProcessTests {
    @Test func reportsParseAndAddUp() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        for id in ["a", "b"] { try cluster.addWorker(id, maxBatch: 4, extra: ["--threads", "1"]) }
        let prefix = scratch.path("report")
        let (status, out, err) = try runStagebeam(
            [
                "loadtest", "--coordinator", cluster.endpoint, "--concurrency", "2", "--requests", "6", "--beam", "2", "--max-stage-tokens",
                "8",
                "--slo", "latency_p99:30s", "--status-interval-ms", "50", "--output", prefix
            ], in: scratch, name: "loadtest")
        #expect(status == 0, "\(err.suffix(2000))")

        let report = try parseJSON(String(contentsOfFile: prefix + ".json", encoding: .utf8))
        let runs = try #require(report["runs"] as? [[String: Any]])
        #expect(runs.count == 1)
        let run = runs[0]
        let samples = try #require(run["samples"] as? [[String: Any]])
        #expect(run["requests"] as? Int == 6 && samples.count == 6)
        #expect(samples.map { $0["index"] as? Int } == (0..<6).map { $0 })
        #expect(run["succeeded"] as? Int == 6 && run["failed"] as? Int == 0)
        #expect(run["slo_met"] as? Bool == true)
        let duration = try #require(run["duration"] as? Double)
        let jobsPerSecond = try #require(run["jobs_per_second"] as? Double)
        #expect(abs(jobsPerSecond - 6 / duration) < 1e-9)
        // Every job here met the 30 s bound, so goodput is the throughput.
        #expect(abs((run["goodput"] as? Double ?? -1) - jobsPerSecond) < 1e-9)
        let tokens = samples.map { $0["generated_tokens"] as? Int ?? 0 }.reduce(0, +)
        #expect(tokens > 0)
        #expect(abs((run["candidate_tokens_per_second"] as? Double ?? 0) - Double(tokens) / duration) < 1e-6)
        let latency = try #require(run["latency"] as? [String: Any])
        let p50 = latency["p50"] as? Double ?? -1, p99 = latency["p99"] as? Double ?? -1
        #expect(p50 > 0 && p50 <= p99 && p99 <= (latency["max"] as? Double ?? 0))
        let stages = try #require(run["stage_latency"] as? [String: Any])
        #expect(Set(stages.keys) == ["summary", "caption", "reasoning", "conclusion"])
        let workers = try #require(run["workers"] as? [[String: Any]])
        #expect(workers.compactMap { $0["worker"] as? String } == ["a", "b"])
        #expect(workers.map { $0["requests"] as? Int ?? 0 }.reduce(0, +) > 0, "the workers served the run: \(workers)")

        let csv = try String(contentsOfFile: prefix + ".csv", encoding: .utf8).split(separator: "\r\n").map {
            $0.split(separator: ",", omittingEmptySubsequences: false)
        }
        #expect(csv.count == 2)
        let row = Dictionary(uniqueKeysWithValues: zip(csv[0].map(String.init), csv[1].map(String.init)))
        #expect(row["requests"] == "6" && row["failed"] == "0" && row["slo_met"] == "yes")
        #expect(abs((Double(row["jobs_per_s"] ?? "") ?? 0) - jobsPerSecond) < 0.001)

        let html = try String(contentsOfFile: prefix + ".html", encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.hasSuffix("</html>\n"))
        #expect(html.components(separatedBy: "<svg ").count - 1 == 2)
        #expect(html.components(separatedBy: "</svg>").count - 1 == 2)
        #expect(!html.contains("<script") && !html.contains("<link"), "self-contained")
        #expect(out.contains("jobs_per_s") && out.contains("a busy"), "\(out)")
    }
}
