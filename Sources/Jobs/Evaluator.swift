import Foundation
import LocalEngine
import Search
import Wire

/// One method at one beam size: a row of the results table.
public struct EvalRun: Sendable, Hashable {
    public var method: SearchMethod
    public var beam: Int

    /// Every method at every beam, in the order given; greedy once, at beam 1 (one candidate at
    /// temperature 0 whatever the beam, so more beams would repeat the same row).
    public static func plan(methods: [SearchMethod], beams: [Int]) -> [EvalRun] {
        var runs: [EvalRun] = []
        for method in methods {
            for beam in method == .greedy ? [1] : beams where !runs.contains(EvalRun(method: method, beam: beam)) {
                runs.append(EvalRun(method: method, beam: beam))
            }
        }
        return runs
    }
}

/// Scores search methods on a dataset, and the judge on held-out pairs, on an in-process engine.
/// Items run one after another; each item's seed derives from the evaluation's seed and its id
/// (`ItemSeed`), so an item gets the same answer in any subset (`--limit`) and in `stagebeam batch`.
public struct Evaluator: Sendable {
    let generator: any CandidateGenerator
    let judge: any Judge
    /// The engine's image store: an item's image is put there for its search.
    let images: ImageStore
    let templates: JudgeTemplates

    public init(generator: any CandidateGenerator, judge: any Judge, images: ImageStore, templates: JudgeTemplates) {
        self.generator = generator
        self.judge = judge
        self.images = images
        self.templates = templates
    }

    /// Runs every item with `run`'s method and beam and `config`'s other options (its seed is the
    /// evaluation's). A search that fails stops the evaluation with an error naming the item.
    public func evaluate(_ items: [EvalItem], run: EvalRun, config: SearchConfig, progress: BatchProgress?) async throws -> EvalRow {
        try await Self.evaluate(items, run: run, config: config, progress: progress) { try await search($0, config: $1) }
    }

    /// One item's search in this process, with `config` as given (its method, beam and seed).
    public func search(_ item: EvalItem, config: SearchConfig) async throws -> SearchResult {
        let search = try StageBeamSearch(generator: generator, judge: judge, templates: templates, config: config)
        return try await withImage(item.image, item: item.id) { imageRef in
            try await search.run(question: item.question, imageRef: imageRef)
        }
    }

    /// Runs every item with `run`'s method and beam through `search` (in this process, or as a job on
    /// a cluster), one after another; each item's configuration carries its own seed.
    public static func evaluate(
        _ items: [EvalItem], run: EvalRun, config: SearchConfig, progress: BatchProgress?,
        search: (EvalItem, SearchConfig) async throws -> SearchResult
    ) async throws -> EvalRow {
        var itemConfig = config
        itemConfig.method = run.method
        itemConfig.beam = run.beam
        var row = EvalRow(run: run)
        let start = ContinuousClock.now
        for item in items {
            itemConfig.seed = ItemSeed.seed(batch: config.seed, id: item.id)
            row.add(try await search(item, itemConfig), for: item)
            progress?.finished(succeeded: true)
        }
        row.seconds = milliseconds(since: start) / 1000
        return row
    }

    /// Asks the judge about each pair twice, with the prompt the search would send and in the
    /// search's judge mode: once with `better` as the first response, once as the second. A tie or
    /// an unparsable reply counts as wrong. The two calls together are also read as one both-orders
    /// match (`MatchDecision`), where undecided counts as wrong. `config` gives the judge options and the seed.
    public func judgeAccuracy(_ pairs: [JudgePair], config: SearchConfig, progress: BatchProgress?) async throws -> JudgeAccuracy {
        let parser = VerdictParser(templates: templates)
        var accuracy = JudgeAccuracy()
        for pair in pairs {
            let job = ItemSeed.seed(batch: config.seed, id: pair.id)
            let calls = try await withImage(pair.image, item: pair.id) { imageRef in
                var calls: [JudgeCallRecord] = []
                for order in [JudgeOrder.forward, .reversed] {
                    let betterFirst = order == .forward
                    let request = JudgeRequest(
                        comparing: betterFirst ? pair.better : pair.worse, betterFirst ? pair.worse : pair.better,
                        topic: pair.topic, question: pair.question, imageRef: imageRef, hints: pair.hints,
                        templates: templates, config: config,
                        seed: SeedDerivation.judgeSeed(job: job, unit: 0, match: 0, order: order))
                    let reply = try await judge.judge(request)
                    calls.append(
                        JudgeCallRecord(
                            order: order, seed: request.seed, reply: reply,
                            verdict: try CallVerdict(reply: reply, mode: config.judgeMode, parser: parser)))
                }
                return calls
            }
            // Both calls are recorded as a match whose first entrant (a) is the better text.
            accuracy.add(
                topic: pair.topic, betterFirst: calls[0].verdict == .first, betterSecond: calls[1].verdict == .second,
                bothOrders: MatchDecision.decide(calls, mode: config.judgeMode) == true)
            progress?.finished(succeeded: true)
        }
        return accuracy
    }

    /// `body` with the image, if any, in the engine's store under its content hash (the `imageRef`).
    /// Errors name the item.
    func withImage<T>(_ url: URL?, item: String, _ body: (String?) async throws -> T) async throws -> T {
        do {
            guard let url else { return try await body(nil) }
            let data = try ItemImage.file(url).load()
            let hash = ContentHash.sha256Hex(data)
            images.put(data, hash: hash)
            defer { images.release(hash) }
            return try await body(hash)
        } catch {
            throw JobsError(.itemFailed, "item \(item): \(error)")
        }
    }
}
