import Cluster
import Foundation
import Synchronization
import Wire

/// A worker's Prometheus metrics.
///
/// Counted as they happen: requests served by kind (generate, judge, reward) and outcome and their
/// time, sequences per generate request (the batch sizes), candidates and tokens generated, refusals
/// by code, images received / found in the byte cache / missing. Read when scraped: sequences in
/// flight, credits, images cached, the reward scorer's engine batches (requests and candidates scored
/// together), and what the backend declares (`WorkerBackend.registerMetrics`: for the
/// in-process engine, after its latest request, KV cache tokens in use (held by the prefix cache
/// between requests), the KV capacity, image-feature cache hits and misses, prompt tokens reused
/// from the prefix cache and computed).
enum WorkerMetrics {
    static let requests = "stagebeam_worker_requests_total"
    static let requestSeconds = "stagebeam_worker_request_seconds"
    static let batchSequences = "stagebeam_worker_batch_sequences"
    static let candidates = "stagebeam_worker_candidates_generated_total"
    static let tokens = "stagebeam_worker_tokens_generated_total"
    static let refusals = "stagebeam_worker_refusals_total"
    static let images = "stagebeam_worker_images_total"

    static func register(on metrics: Metrics, worker: Worker, engine: (any WorkerBackend)?, scorer: WorkerScorer?) {
        metrics.declareCounter(
            requests, "Requests served, by kind (generate, judge, reward) and outcome (ok, error, stopped: by StopRequests).")
        metrics.declareHistogram(
            requestSeconds, "Time from receiving a request to answering it, by kind, seconds.", buckets: Metrics.latencyBuckets)
        metrics.declareHistogram(batchSequences, "Sequences decoded together per generate request.", buckets: Metrics.sizeBuckets)
        metrics.declareCounter(candidates, "Candidates generated.")
        metrics.declareCounter(tokens, "Candidate tokens generated.")
        metrics.declareCounter(refusals, "Requests refused, by error code (overloaded, image_not_cached, …).")
        metrics.declareCounter(images, "Request images by event: received (bytes), cache_hit (named by hash, cached), cache_miss.")
        let maxBatch = worker.configuration.maxBatch
        metrics.gauge("stagebeam_worker_in_flight_sequences", "Sequences being served now.") { [weak worker] in
            [([], Double(worker?.load().sequences ?? 0))]
        }
        metrics.gauge("stagebeam_worker_credits", "Credits advertised (max batch).") { [([], Double(maxBatch))] }
        metrics.gauge("stagebeam_worker_images_cached", "Images held in the byte cache.") { [weak worker] in
            [([], Double(worker?.load().images ?? 0))]
        }
        if let scorer {
            metrics.counter("stagebeam_worker_reward_batches_total", "Reward engine batches (requests scored together).") {
                [([], Double(scorer.batchCounts().batches))]
            }
            metrics.counter(
                "stagebeam_worker_reward_batched_requests_total", "Reward requests scored, over all batches (÷ batches: the mean batch)."
            ) {
                [([], Double(scorer.batchCounts().requests))]
            }
            metrics.counter("stagebeam_worker_reward_batched_candidates_total", "Reward candidates scored, over all batches.") {
                [([], Double(scorer.batchCounts().candidates))]
            }
        }
        engine?.registerMetrics(on: metrics)
    }

    /// Counts a request served (its answer: a result or an error).
    static func served(
        _ answer: Stagebeam_V1_Envelope.OneOf_Body, role: Stagebeam_V1_Role, sequences: Int, seconds: Double, on metrics: Metrics
    ) {
        let kind = role.logName
        if case .error = answer {
            metrics.inc(requests, [("kind", kind), ("outcome", "error")])
            return
        }
        metrics.inc(requests, [("kind", kind), ("outcome", "ok")])
        metrics.observe(requestSeconds, seconds, [("kind", kind)])
        if case .generateResult(let result) = answer {
            metrics.observe(batchSequences, Double(sequences))
            metrics.inc(candidates, by: Double(result.candidates.count))
            metrics.inc(tokens, by: Double(result.candidates.reduce(0) { $0 + Int($1.tokenCount) }))
        }
    }
}

/// The engine's figures, written on its queue after each generate request and read by scrapes.
final class EngineStats: Sendable {
    struct Snapshot {
        var kvUsedTokens = 0
        var featureHits = 0
        var featureMisses = 0
        var cachedPromptTokens = 0
        var prefillTokens = 0
    }

    private let current = Mutex(Snapshot())

    func snapshot() -> Snapshot { current.withLock { $0 } }

    func record(kvUsedTokens: Int, images: Int, imageSeconds: Double, cachedPromptTokens: Int, prefillTokens: Int) {
        current.withLock { current in
            current.kvUsedTokens = kvUsedTokens
            // The engine reports 0 image seconds exactly when the features came from its cache.
            if images > 0 {
                if imageSeconds == 0 { current.featureHits += images } else { current.featureMisses += images }
            }
            current.cachedPromptTokens += cachedPromptTokens
            current.prefillTokens += prefillTokens
        }
    }
}

extension WorkerEngine {
    /// The engine's KV cache, image-feature and prefix-cache figures.
    public func registerMetrics(on metrics: Metrics) {
        let stats = self.stats
        metrics.gauge("stagebeam_worker_kv_cache_used_tokens", "KV cache tokens in use after the latest request (prefix cache).") {
            [([], Double(stats.snapshot().kvUsedTokens))]
        }
        let cache = executor.generator.cache
        let capacity = Double(cache.capacityBlocks * cache.blockSize)
        metrics.gauge("stagebeam_worker_kv_cache_capacity_tokens", "KV cache capacity in tokens.") { [([], capacity)] }
        metrics.counter(
            "stagebeam_worker_image_features_total", "Images of generate requests by whether their encoded features were cached."
        ) {
            let snapshot = stats.snapshot()
            return [([("cache", "hit")], Double(snapshot.featureHits)), ([("cache", "miss")], Double(snapshot.featureMisses))]
        }
        metrics.counter(
            "stagebeam_worker_prompt_tokens_total", "Prompt tokens of generate requests: reused from the prefix cache, or computed."
        ) {
            let snapshot = stats.snapshot()
            return [
                ([("source", "prefix_cache")], Double(snapshot.cachedPromptTokens)),
                ([("source", "computed")], Double(snapshot.prefillTokens))
            ]
        }
    }
}
