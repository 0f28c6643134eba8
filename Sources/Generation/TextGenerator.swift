import Foundation
import Kernels
import ModelFormats
import Models
import Tokenization

/// Generates n samples of one prompt: the prompt is prefilled once, its KV blocks are shared by
/// forking, and the n samples advance together, one row each per forward pass (batched decode).
public final class TextGenerator: @unchecked Sendable {
    public let model: any TokenDecoder
    /// The vision side of a LLaVA checkpoint (nil for a text-only model).
    public let vision: LlavaModel?
    /// A Llama 3.2 Vision checkpoint's decoder, which `model` is (nil otherwise): its images reach
    /// every forward pass through cross-attention instead of entering the prompt.
    public let mllama: MllamaDecoder?
    public let tokenizer: Tokenizer
    public let cache: PagedKVCache
    /// A step's draws across the compute pool.
    private let draws: SampleDraws
    /// Bytes each id adds to the output text (empty for special tokens), computed once.
    private let tokenText: [[UInt8]]
    private var batch: ForwardBatch
    private var prefixes: PrefixCache
    private var imageFeatures: ImageFeatureCache<ImageFeatures>
    private var imageStates: ImageFeatureCache<MllamaImageStates>
    private let logprobIds: UnsafeMutablePointer<Int32>
    private static let maxTopLogprobs = 20

    /// How the KV cache stores keys and values.
    public var kvCacheType: KVCacheType { cache.type }

    /// `prefixCacheEntries`: how many recent prompts stay in the KV cache for reuse (0: none).
    /// `vision`: a LLaVA checkpoint's image side, whose `language` must be `model`.
    public convenience init(
        model: LlamaModel, vision: LlavaModel? = nil, tokenizer: Tokenizer, kvCapacityTokens: Int, kvCacheType: KVCacheType = .f32,
        prefixCacheEntries: Int = 8, imageCacheEntries: Int = 8
    ) {
        precondition(vision == nil || vision!.language === model, "the vision model must wrap this language model")
        self.init(
            decoder: model, vision: vision, mllama: nil, tokenizer: tokenizer, kvCapacityTokens: kvCapacityTokens,
            kvCacheType: kvCacheType, prefixCacheEntries: prefixCacheEntries, imageCacheEntries: imageCacheEntries)
    }

    /// A generator for a Llama 3.2 Vision checkpoint. An image's cross-attention states are large
    /// (Llama 3.2 11B Vision: 4 tiles × 1601 rows × 8 layers × 8 KV heads × 128 × keys and values
    /// in f32 ≈ 420 MB), so fewer are cached by default than LLaVA's feature rows.
    public convenience init(
        mllama: MllamaModel, tokenizer: Tokenizer, kvCapacityTokens: Int, kvCacheType: KVCacheType = .f32,
        prefixCacheEntries: Int = 8, imageCacheEntries: Int = 2
    ) {
        let decoder = MllamaDecoder(mllama)
        self.init(
            decoder: decoder, vision: nil, mllama: decoder, tokenizer: tokenizer, kvCapacityTokens: kvCapacityTokens,
            kvCacheType: kvCacheType, prefixCacheEntries: prefixCacheEntries, imageCacheEntries: imageCacheEntries)
    }

    private init(
        decoder model: any TokenDecoder, vision: LlavaModel?, mllama: MllamaDecoder?, tokenizer: Tokenizer,
        kvCapacityTokens: Int, kvCacheType: KVCacheType, prefixCacheEntries: Int, imageCacheEntries: Int
    ) {
        self.model = model
        self.vision = vision
        self.mllama = mllama
        self.prefixes = PrefixCache(capacity: prefixCacheEntries)
        self.imageFeatures = ImageFeatureCache(capacity: imageCacheEntries)
        self.imageStates = ImageFeatureCache(capacity: imageCacheEntries)
        self.tokenizer = tokenizer
        self.cache = model.makeCache(capacityTokens: kvCapacityTokens, type: kvCacheType)
        self.draws = SampleDraws(vocabularySize: model.vocabularySize, rows: model.maxLogitRows, threads: model.pool.threads)
        let special = tokenizer.specialTokenIds
        self.tokenText = (0..<model.vocabularySize).map { id in
            special.contains(id) || id >= tokenizer.vocabularySize ? [] : tokenizer.tokenBytes(id)
        }
        self.batch = ForwardBatch(capacity: model.maxRows)
        self.logprobIds = .allocate(capacity: Self.maxTopLogprobs)
    }

    deinit { logprobIds.deallocate() }

    /// Most samples one request may ask for (they decode as one batch).
    public var maxSamples: Int { model.maxLogitRows }

    /// Tokens a sequence may reach: the model's trained context.
    public var contextLength: Int { model.contextLength }

    /// `requested` new tokens cut to what the context leaves after a prompt of `promptTokens`: a
    /// search's budgets are caps, and a long prefix should shorten them rather than fail the call.
    /// Unchanged when the prompt leaves nothing, so the request still fails with `promptTooLong`.
    public func newTokenBudget(_ requested: Int, promptTokens: Int) -> Int {
        let room = contextLength - promptTokens
        return room > 0 ? min(requested, room) : requested
    }

    /// Whether requests may carry images (a LLaVA or Llama 3.2 Vision checkpoint).
    public var takesImages: Bool { vision != nil || mllama != nil }

    /// The token that stands for an image in a prompt (before `expandImageTokens`); nil for a text model.
    public var imageTokenId: Int? { vision?.imageTokenId ?? mllama?.model.imageTokenId }

    public func generate(_ request: GenerationRequest) throws -> GenerationOutput {
        try generate([request])[0]
    }

    /// Several requests decoded together (a bracket round's judge verdicts): each prompt is prefilled
    /// (or taken from the prefix cache, which already holds the prompts before it in the list), then
    /// the samples of every request advance together, one row each per forward pass. The kernels are
    /// batch-invariant, so each sample's tokens are what `generate` of its request alone gives. The
    /// batch's decode time is shared among the requests in proportion to the tokens each decoded.
    ///
    /// Samples that together need more KV slots than the whole cache holds decode in parts that
    /// fit (the same tokens, by batch invariance); a sample that does not fit alone is refused with
    /// `cacheFull`, before anything cached is evicted.
    public func generate(_ requests: [GenerationRequest]) throws -> [GenerationOutput] {
        for request in requests {
            try validate(request)
            let alone = kvSlots(request, samples: 1)
            guard alone <= cache.tokenCapacity else {
                throw GenerationError(
                    .cacheFull,
                    "a sample of a \(request.promptTokens.count)-token prompt with up to \(request.maxNewTokens) new tokens needs up to \(alone) KV slots; the KV cache holds \(cache.tokenCapacity) (raise --kv-capacity or lower --max-tokens)"
                )
            }
        }
        let samplesWanted = requests.reduce(0) { $0 + $1.seeds.count }
        guard samplesWanted <= maxSamples else {
            throw GenerationError(.invalidParameter, "samples per batch must be 1...\(maxSamples), got \(samplesWanted)")
        }
        return try generate(parts: requests.map { BatchPart(request: $0) })
    }

    /// A request, or some of its samples, in a batch; `firstSample` is the index of its first
    /// sample in the request (what streamed text reports).
    private struct BatchPart {
        var request: GenerationRequest
        var firstSample = 0
    }

    /// The parts as one batch when their KV slots fit in the cache emptied of reusable prefixes,
    /// otherwise split in two (between requests, else between one request's samples) and merged
    /// back: one output per part.
    private func generate(parts: [BatchPart]) throws -> [GenerationOutput] {
        let needed = parts.reduce(0) { $0 + kvSlots($1.request, samples: $1.request.seeds.count) }
        makeRoom(for: needed)
        if needed <= cache.freeTokenCapacity { return try decode(parts) }
        if parts.count > 1 {
            let half = parts.count / 2
            return try generate(parts: Array(parts[..<half])) + generate(parts: Array(parts[half...]))
        }
        let part = parts[0]
        guard part.request.seeds.count > 1 else {
            // Only when sequences outside the prefix cache hold blocks: one sample fits an empty cache.
            throw GenerationError(.cacheFull, "a sample needs up to \(needed) KV slots, \(cache.freeTokenCapacity) are free")
        }
        let half = part.request.seeds.count / 2
        var head = part
        head.request.seeds = Array(part.request.seeds[..<half])
        var tail = part
        tail.request.seeds = Array(part.request.seeds[half...])
        tail.firstSample += half
        let first = try generate(parts: [head])[0]
        let second = try generate(parts: [tail])[0]
        var timings = first.timings
        // Reused prompt tokens are the first part's (the second usually finds the prompt in the
        // prefix cache); tokens computed and seconds are both parts'.
        timings.prefillTokens += second.timings.prefillTokens
        timings.imageSeconds += second.timings.imageSeconds
        timings.prefillSeconds += second.timings.prefillSeconds
        timings.decodeTokens += second.timings.decodeTokens
        timings.decodeRows += second.timings.decodeRows
        timings.decodeSeconds += second.timings.decodeSeconds
        return [GenerationOutput(samples: first.samples + second.samples, timings: timings)]
    }

    /// KV slots that `samples` of `request`'s samples may need: the prompt once, each sample's new
    /// tokens and a partly filled block of its own.
    private func kvSlots(_ request: GenerationRequest, samples: Int) -> Int {
        request.promptTokens.count + samples * (request.maxNewTokens + cache.blockSize)
    }

    /// Decodes the parts as one batch; their KV slots are known to fit.
    private func decode(_ parts: [BatchPart]) throws -> [GenerationOutput] {
        let requests = parts.map(\.request)
        var timings = [GenerationTimings](repeating: GenerationTimings(), count: requests.count)
        /// Each request's logits after its prompt (requests × vocabulary).
        var promptLogits: [Float] = []
        var samples: [SampleState] = []
        /// The request each sample belongs to.
        var owners: [Int] = []
        // Samples of one request whose tokens so far are the same are in one state: they share a KV
        // sequence and a forward row. `leader[i]` is the sample whose sequence advances for i (i
        // itself when it leads). The kernels are batch-invariant, so a shared row's logits are the
        // bits each sample would get in a row of its own, and every sample still draws from its own
        // random stream: the tokens are exactly those of one row per sample. A sample that draws
        // another token than its leader leaves the group on a fork of the leader's sequence. Candidates
        // sampled at a low temperature often write the same text, which then costs one row.
        var leader: [Int] = []
        // Released however decoding ends (a full cache throws mid-way); kept for reuse when asked
        // (`keepSamples`) and decoding finished. A sample's cache holds the prompt and all its tokens
        // but the last (which was sampled, never run); keeping it drops the prompt's own entry, of
        // which it is an extension.
        var finished = false
        defer {
            for (i, sample) in samples.enumerated() where !sample.stopped {
                let request = requests[owners[i]]
                if finished && request.keepSamples {
                    keepOrRelease(
                        sample.sequence, tokens: request.promptTokens + sample.tokenIds.dropLast(), imageKeys: request.images.map(\.hash))
                } else {
                    cache.release(sample.sequence)
                }
            }
        }
        for (r, request) in requests.enumerated() {
            let started = Date()
            let images = try imageInputs(request.promptTokens, request.images)
            timings[r].imageSeconds = Date().timeIntervalSince(started)
            let imageKeys = request.images.map(\.hash)
            let (prefix, logits, reused) = try preparePrefix(request.promptTokens, images: images, imageKeys: imageKeys)
            // The samples' forks hold the prefix's blocks, so the prompt can go to the prefix cache
            // now, where the next request of the batch finds it.
            let firstSample = samples.count
            for seed in request.seeds {
                leader.append(firstSample)
                samples.append(
                    SampleState(
                        sequence: cache.fork(prefix), seed: seed, prompt: request.promptTokens,
                        trackSeen: request.sampling.repetitionPenalty != 1, vocabularySize: model.vocabularySize,
                        reserve: request.maxNewTokens))
                owners.append(r)
            }
            keepOrRelease(prefix, tokens: request.promptTokens, imageKeys: imageKeys)
            promptLogits.append(contentsOf: logits)
            timings[r].cachedPromptTokens = reused
            timings[r].prefillTokens = request.promptTokens.count - reused
            timings[r].prefillSeconds = Date().timeIntervalSince(started)
        }

        let decodeStarted = Date()
        let stops = requests.map { StopMatcher($0.stopStrings) }
        // Requests a caller may stop or watch (`GenerationControl`): bytes of each sample's text
        // reported so far, and when each request's next report is due.
        let controlled = requests.indices.filter { requests[$0].control != nil }
        var reported = [Int](repeating: 0, count: controlled.isEmpty ? 0 : samples.count)
        var nextReport = requests.map { request in request.control?.textInterval.map { ContinuousClock.now + $0 } }
        func report(_ r: Int) {
            guard let control = requests[r].control, let onText = control.onText, !control.isStopped else { return }
            var texts: [SampleText] = []
            for (k, i) in samples.indices.filter({ owners[$0] == r }).enumerated() {
                let text = samples[i].text
                let end = samples[i].finished ? text.count : Self.completeUTF8Length(text)
                guard end > reported[i] else { continue }
                texts.append(
                    SampleText(
                        index: parts[r].firstSample + k, text: String(decoding: text[reported[i]..<end], as: UTF8.self),
                        tokenCount: samples[i].tokenIds.count))
                reported[i] = end
            }
            if !texts.isEmpty { onText(texts) }
        }
        let vocabulary = model.vocabularySize
        /// Draws every unfinished sample's next token (across the pool) from `logits(sample)` and
        /// appends it.
        func step(_ logits: (_ sample: Int) -> UnsafePointer<Float>) {
            var row = 0
            for i in samples.indices where !samples[i].finished {
                draws.setRow(row, sample: i, logits: logits(i), sampling: requests[owners[i]].sampling)
                row += 1
            }
            draws(rows: row, samples: &samples, pool: model.pool)
            row = 0
            for i in samples.indices where !samples[i].finished {
                let r = owners[i]
                accept(
                    draws.tokens[row], logNormalizer: draws.logNormalizers[row], into: &samples[i], logits: logits(i),
                    request: requests[r], stops: stops[r])
                row += 1
            }
        }
        /// Group members as they were before a step's draws (kept here so a step allocates nothing).
        var previousLeader = leader
        /// Splits the groups whose members drew different tokens: the members that drew a token other
        /// than their leader's form one group per token, led by its first member, whose sequence is a
        /// fork of the old leader's (which does not hold the token just drawn yet).
        func regroup() {
            for i in samples.indices { previousLeader[i] = leader[i] }
            for i in samples.indices where leader[i] != i && !samples[i].stopped {
                let old = previousLeader[i]
                let token = samples[i].tokenIds.last
                guard token != samples[old].tokenIds.last else { continue }
                if let newLeader = (old + 1..<i).first(where: {
                    previousLeader[$0] == old && leader[$0] == $0 && samples[$0].tokenIds.last == token
                }) {
                    leader[i] = newLeader
                } else {
                    leader[i] = i
                    cache.release(samples[i].sequence)
                    samples[i].sequence = cache.fork(samples[old].sequence)
                }
            }
        }
        /// Each leader's row in the step's forward pass.
        var leaderRow = [Int](repeating: 0, count: samples.count)
        promptLogits.withUnsafeBufferPointer { prompts in step { i in prompts.baseAddress! + owners[i] * vocabulary } }
        regroup()
        while true {
            for r in controlled where requests[r].control!.isStopped {
                for i in samples.indices where owners[i] == r && !samples[i].stopped {
                    samples[i].stopped = true
                    cache.release(samples[i].sequence)
                }
            }
            batch.removeAll()
            for i in samples.indices where !samples[i].finished && leader[i] == i {
                let position = try reserve(samples[i].sequence)
                leaderRow[i] = batch.count
                batch.append(token: samples[i].tokenIds.last!, sequence: samples[i].sequence, position: position, wantsLogits: true)
                timings[owners[i]].decodeRows += 1
            }
            if batch.count == 0 { break }
            let logits = try model.forward(batch, cache: cache).baseAddress!
            step { i in logits + leaderRow[leader[i]] * vocabulary }
            regroup()
            if controlled.contains(where: { nextReport[$0] != nil }) {
                let now = ContinuousClock.now
                for r in controlled {
                    guard let due = nextReport[r], let interval = requests[r].control?.textInterval, now >= due else { continue }
                    report(r)
                    nextReport[r] = now + interval
                }
            }
        }
        for r in controlled where nextReport[r] != nil { report(r) }
        // A sample kept for reuse needs a sequence of its own holding its state.
        for i in samples.indices where leader[i] != i && !samples[i].stopped && requests[owners[i]].keepSamples {
            cache.release(samples[i].sequence)
            samples[i].sequence = cache.fork(samples[leader[i]].sequence)
            leader[i] = i
        }
        finished = true
        let decodeSeconds = Date().timeIntervalSince(decodeStarted)
        for i in samples.indices { timings[owners[i]].decodeTokens += samples[i].tokenIds.count }
        let decodedTokens = max(timings.reduce(0) { $0 + $1.decodeTokens }, 1)
        return requests.indices.map { r in
            var requestTimings = timings[r]
            requestTimings.decodeSeconds =
                requests.count == 1 ? decodeSeconds : decodeSeconds * Double(requestTimings.decodeTokens) / Double(decodedTokens)
            return GenerationOutput(samples: samples.indices.filter { owners[$0] == r }.map { samples[$0].result }, timings: requestTimings)
        }
    }

    /// Teacher-forced log-probability of each continuation after `prompt` (summed over its tokens):
    /// the judge's logprob verdict. The prompt is prefilled once (or reused) for all continuations;
    /// a one-token continuation costs no forward pass beyond the prompt's.
    public func scoreContinuations(prompt: [Int], images promptImages: [PromptImage] = [], continuations: [[Int]]) throws -> [Double] {
        try scoreContinuationsMeasured(prompt: prompt, images: promptImages, continuations: continuations).logprobs
    }

    /// `scoreContinuations`, with its timings: the prompt's image and prefill as prefill, the
    /// continuations' own passes as decode.
    public func scoreContinuationsMeasured(
        prompt: [Int], images promptImages: [PromptImage] = [], continuations: [[Int]]
    ) throws -> (logprobs: [Double], timings: GenerationTimings) {
        guard !prompt.isEmpty else { throw GenerationError(.emptyPrompt, "the prompt has no tokens") }
        if let long = continuations.first(where: { $0.count > model.maxLogitRows }) {
            throw GenerationError(.invalidParameter, "a scored continuation has \(long.count) tokens; at most \(model.maxLogitRows)")
        }
        let longest = continuations.map(\.count).max() ?? 0
        guard prompt.count + longest <= contextLength else {
            throw GenerationError(
                .promptTooLong, "prompt of \(prompt.count) tokens + a continuation of \(longest) exceeds the context of \(contextLength)")
        }
        // The continuations run one at a time, each on a fork of the prompt released after it.
        makeRoom(for: prompt.count + 2 * cache.blockSize + longest)
        var timings = GenerationTimings()
        let started = Date()
        let images = try imageInputs(prompt, promptImages)
        timings.imageSeconds = Date().timeIntervalSince(started)
        let imageKeys = promptImages.map(\.hash)
        let (prefix, logits, reused) = try preparePrefix(prompt, images: images, imageKeys: imageKeys)
        defer { keepOrRelease(prefix, tokens: prompt, imageKeys: imageKeys) }
        timings.cachedPromptTokens = reused
        timings.prefillTokens = prompt.count - reused
        timings.prefillSeconds = Date().timeIntervalSince(started)
        let decodeStarted = Date()
        let vocabulary = model.vocabularySize
        func logprob(_ row: UnsafePointer<Float>, _ token: Int) -> Double {
            Double(row[token] - logSumExp(row, count: vocabulary))
        }
        let logprobs = try continuations.map { tokens in
            guard let first = tokens.first else { return 0.0 }
            var total = logits.withUnsafeBufferPointer { logprob($0.baseAddress!, first) }
            guard tokens.count > 1 else { return total }
            let sequence = cache.fork(prefix)
            defer { cache.release(sequence) }
            batch.removeAll()
            let start = try reserve(sequence, count: tokens.count - 1)
            for j in 0..<(tokens.count - 1) {
                batch.append(token: tokens[j], sequence: sequence, position: start + j, wantsLogits: true)
            }
            let rows = try model.forward(batch, cache: cache)
            for j in 1..<tokens.count { total += logprob(rows.baseAddress! + (j - 1) * vocabulary, tokens[j]) }
            return total
        }
        timings.decodeTokens = continuations.reduce(0) { $0 + max($1.count - 1, 0) }
        timings.decodeSeconds = Date().timeIntervalSince(decodeStarted)
        return (logprobs, timings)
    }

    /// Teacher-forced log-probabilities of each prompt's continuations, all prompts in the same
    /// forward passes: the pointwise scorer's yes/no read after each candidate. Each prompt starts
    /// from its longest cached prefix (a candidate kept by `keepSamples`), so only its new tail is
    /// computed; the tails run as rows of shared batches, then every continuation longer than one
    /// token runs on its own fork. `images` are the prompts' images (the same for all of them).
    /// Batch-invariant kernels make each score independent of the others in the call.
    public func scoreContinuations(_ items: [ScoredPrompt], images promptImages: [PromptImage] = []) throws -> ContinuationScores {
        var result = ContinuationScores(logprobs: [], cachedPromptTokens: 0, computedTokens: 0)
        // At most one logit row per prompt in a pass, and prompts whose KV slots (an upper bound)
        // fit the cache together: prompts go in groups within both, the same scores as in one
        // group. A prompt too large for the cache alone fails with `cacheFull` as it runs.
        var start = 0
        while start < items.count {
            var end = start + 1
            var slots = kvSlots(items[start])
            while end < items.count, end - start < model.maxLogitRows, slots + kvSlots(items[end]) <= cache.tokenCapacity {
                slots += kvSlots(items[end])
                end += 1
            }
            let group = Array(items[start..<end])
            let scores = try scoreGroup(group, images: promptImages)
            result.logprobs += scores.logprobs
            result.cachedTokensByPrompt += scores.cachedTokensByPrompt
            result.cachedPromptTokens += scores.cachedPromptTokens
            result.computedTokens += scores.computedTokens
            start += group.count
        }
        return result
    }

    private func scoreGroup(_ items: [ScoredPrompt], images promptImages: [PromptImage]) throws -> ContinuationScores {
        for item in items {
            guard !item.prompt.isEmpty else { throw GenerationError(.emptyPrompt, "the prompt has no tokens") }
            if let long = item.continuations.first(where: { $0.count > model.maxLogitRows }) {
                throw GenerationError(.invalidParameter, "a scored continuation has \(long.count) tokens; at most \(model.maxLogitRows)")
            }
            let longest = item.continuations.map(\.count).max() ?? 0
            guard item.prompt.count + longest <= contextLength else {
                throw GenerationError(
                    .promptTooLong,
                    "prompt of \(item.prompt.count) tokens + a continuation of \(longest) exceeds the context of \(contextLength)")
            }
        }
        makeRoom(for: items.reduce(0) { $0 + kvSlots($1) })
        // Llama 3.2 Vision binds the image to the first prompt's image token; the prompts share their head.
        let images = try imageInputs(items[0].prompt, promptImages)
        let imageKeys = promptImages.map(\.hash)
        var sequences: [PagedKVCache.SequenceID] = []
        defer { for sequence in sequences { cache.release(sequence) } }
        var prompts: [MultimodalPrompt] = []
        var next: [Int] = []
        var result = ContinuationScores(logprobs: [], cachedPromptTokens: 0, computedTokens: 0)
        for item in items {
            prompts.append(try MultimodalPrompt(ids: item.prompt, imageTokenId: vision?.imageTokenId ?? -1, images: images))
            if let match = prefixes.longestMatch(item.prompt, images: imageKeys) {
                let reused = min(match.length, item.prompt.count - 1)
                sequences.append(cache.fork(match.sequence))
                cache.trim(sequences[sequences.count - 1], to: reused)
                next.append(reused)
            } else {
                sequences.append(cache.createSequence())
                next.append(0)
            }
            result.cachedTokensByPrompt.append(next[next.count - 1])
            result.cachedPromptTokens += next[next.count - 1]
            result.computedTokens += item.prompt.count - next[next.count - 1]
        }

        // Phase 1: the prompts' tails, packed into passes of at most `maxRows` rows; each prompt's last
        // row gives the log-probability of every continuation's first token.
        let vocabulary = model.vocabularySize
        func logprob(_ row: UnsafePointer<Float>, _ token: Int) -> Double {
            Double(row[token] - logSumExp(row, count: vocabulary))
        }
        var logprobs = items.map { [Double](repeating: 0, count: $0.continuations.count) }
        var pending = Array(items.indices)
        while !pending.isEmpty {
            batch.removeAll()
            var ending: [Int] = []
            for i in pending where batch.count < model.maxRows {
                let chunk = min(model.maxRows - batch.count, prompts[i].count - next[i])
                let first = try reserve(sequences[i], count: chunk)
                let last = prompts[i].count - 1
                prompts[i].append(next[i]..<(next[i] + chunk), to: &batch, sequence: sequences[i], firstPosition: first - next[i]) {
                    $0 == last
                }
                next[i] += chunk
                if next[i] == prompts[i].count { ending.append(i) }
            }
            let rows = try model.forward(batch, cache: cache)
            for (r, i) in ending.enumerated() {
                let row = rows.baseAddress! + r * vocabulary
                for (c, tokens) in items[i].continuations.enumerated() where !tokens.isEmpty {
                    logprobs[i][c] = logprob(row, tokens[0])
                }
            }
            pending.removeAll { next[$0] == prompts[$0].count }
        }

        // Phase 2: continuations of two or more tokens, each on a fork of its prompt, packed into passes.
        var forks: [(item: Int, continuation: Int, sequence: PagedKVCache.SequenceID)] = []
        for (i, item) in items.enumerated() {
            for (c, tokens) in item.continuations.enumerated() where tokens.count > 1 {
                let fork = cache.fork(sequences[i])
                sequences.append(fork)
                forks.append((i, c, fork))
            }
        }
        var f = 0
        while f < forks.count {
            batch.removeAll()
            var included: [Int] = []
            while f < forks.count {
                let tokens = items[forks[f].item].continuations[forks[f].continuation]
                guard batch.count + tokens.count - 1 <= model.maxRows, batch.logitRows.count + tokens.count - 1 <= model.maxLogitRows
                else { break }
                let first = try reserve(forks[f].sequence, count: tokens.count - 1)
                for j in 0..<(tokens.count - 1) {
                    batch.append(token: tokens[j], sequence: forks[f].sequence, position: first + j, wantsLogits: true)
                }
                included.append(f)
                f += 1
            }
            let rows = try model.forward(batch, cache: cache)
            var r = 0
            for k in included {
                let (i, c, _) = forks[k]
                let tokens = items[i].continuations[c]
                for j in 1..<tokens.count {
                    logprobs[i][c] += logprob(rows.baseAddress! + r * vocabulary, tokens[j])
                    r += 1
                }
                result.computedTokens += tokens.count - 1
            }
        }
        result.logprobs = logprobs
        return result
    }

    /// A sequence holding the prompt, the logits after its last token, and how many of its tokens
    /// came from the prefix cache instead of being computed. At least the last token is computed.
    private func preparePrefix(_ tokens: [Int], images: [ImageFeatures], imageKeys: [String]) throws -> (
        PagedKVCache.SequenceID, [Float], Int
    ) {
        // Image tokens take their image's feature rows; on a text model no id is an image token.
        let prompt = try MultimodalPrompt(ids: tokens, imageTokenId: vision?.imageTokenId ?? -1, images: images)
        let sequence: PagedKVCache.SequenceID
        var reused = 0
        if let match = prefixes.longestMatch(tokens, images: imageKeys) {
            reused = min(match.length, tokens.count - 1)
            sequence = cache.fork(match.sequence)
            cache.trim(sequence, to: reused)
        } else {
            sequence = cache.createSequence()
        }
        do {
            return (sequence, try prefill(prompt, from: reused, into: sequence), reused)
        } catch {
            cache.release(sequence)
            throw error
        }
    }

    /// Keeps a finished request's prompt for reuse, or releases it when prefix caching is off.
    private func keepOrRelease(_ sequence: PagedKVCache.SequenceID, tokens: [Int], imageKeys: [String]) {
        guard prefixes.capacity > 0 else { cache.release(sequence); return }
        for dropped in prefixes.insert(tokens, images: imageKeys, sequence: sequence) { cache.release(dropped) }
    }

    /// Frees cached prefixes, least recently used first, until `tokens` KV slots are free.
    private func makeRoom(for tokens: Int) {
        while cache.freeTokenCapacity < tokens, let dropped = prefixes.evictOne() { cache.release(dropped) }
    }

    /// Runs the prompt's positions `start...` into `sequence` after its current end (in chunks of
    /// the model's row capacity) and returns the logits after the last one.
    func prefill(_ prompt: MultimodalPrompt, from start: Int, into sequence: PagedKVCache.SequenceID) throws -> [Float] {
        var offset = start
        var last: [Float] = []
        while offset < prompt.count {
            let chunk = min(model.maxRows, prompt.count - offset)
            batch.removeAll()
            let first = try reserve(sequence, count: chunk)
            prompt.append(offset..<(offset + chunk), to: &batch, sequence: sequence, firstPosition: first - offset) {
                $0 == prompt.count - 1
            }
            let logits = try model.forward(batch, cache: cache)
            if offset + chunk == prompt.count { last = Array(logits) }
            offset += chunk
        }
        return last
    }

    /// For a vision model: each image token of `ids` repeated to the image's feature-row count.
    public func expandImageTokens(_ ids: [Int]) -> [Int] {
        vision?.expandImageTokens(ids) ?? ids
    }

    /// The ids transformers' processor gives for a plain `processor(text: prompt, ...)` call (no chat
    /// template): the tokenizer's ids with its special tokens, then
    /// - LLaVA (`LlavaProcessor`): each image token expanded to the image's feature rows; the text is
    ///   not otherwise touched, with or without BOS text;
    /// - Llama 3.2 Vision (`MllamaProcessor.build_string_from_input`): when the text holds no BOS text
    ///   anywhere, BOS text is inserted after any leading `<|image|>` tokens (and the tokenizer adds its
    ///   own BOS before them): "<|image|>Hi" becomes [BOS, <|image|>, BOS, "Hi"].
    public func processorPromptTokens(_ prompt: String) -> [Int] {
        guard mllama != nil, let bos = tokenizer.bosToken, !prompt.contains(bos) else {
            return expandImageTokens(tokenizer.encode(prompt))
        }
        // MllamaProcessor's image token when the tokenizer names none (Llama 3.2 Vision's does not).
        let imageToken = "<|image|>"
        var text = Substring(prompt), leadingImages = 0
        while text.hasPrefix(imageToken) {
            text = text.dropFirst(imageToken.count)
            leadingImages += 1
        }
        return tokenizer.encode(String(repeating: imageToken, count: leadingImages) + bos + text)
    }

    /// What a prompt's images become. LLaVA: each image's feature rows, which enter the prompt as
    /// embedding rows. Llama 3.2 Vision: nothing in the prompt — its one image's cross-attention
    /// states (computed once per content hash while cached) are bound to the `<|image|>` token's
    /// position and shown to every forward pass of this request.
    private func imageInputs(_ tokens: [Int], _ images: [PromptImage]) throws -> [ImageFeatures] {
        guard let mllama else { return try images.map { try features(of: $0) } }
        guard images.count <= 1 else {
            throw GenerationError(.invalidParameter, "Llama 3.2 Vision takes one image per prompt, got \(images.count)")
        }
        var states: MllamaImageStates?
        if let image = images.first {
            states = imageStates.lookup(image.hash)
            if states == nil {
                states = try mllama.model.imageStates(imageData: image.data)
                imageStates.insert(states!, for: image.hash)
            }
        }
        mllama.image = try mllama.model.context(promptIds: tokens, image: states)
        return []
    }

    /// An image's projected features, computed once per content hash while it stays in the cache.
    private func features(of image: PromptImage) throws -> ImageFeatures {
        guard let vision else {
            throw GenerationError(.invalidParameter, "this model has no vision tower; it cannot take images")
        }
        if let cached = imageFeatures.lookup(image.hash) { return cached }
        let features = try vision.imageFeatures(imageData: image.data)
        imageFeatures.insert(features, for: image.hash)
        return features
    }

    private func reserve(_ sequence: PagedKVCache.SequenceID, count: Int = 1) throws -> Int {
        do { return try cache.append(sequence, count: count) } catch {
            throw GenerationError(.cacheFull, error.description)
        }
    }

    /// KV slots that scoring `item` may need: its prompt and each continuation, each with a partly
    /// filled block of its own.
    private func kvSlots(_ item: ScoredPrompt) -> Int {
        item.prompt.count + cache.blockSize + item.continuations.reduce(0) { $0 + $1.count + cache.blockSize }
    }

    /// Checks a request.
    private func validate(_ request: GenerationRequest) throws {
        try request.sampling.validate()
        guard !request.promptTokens.isEmpty else { throw GenerationError(.emptyPrompt, "the prompt has no tokens") }
        guard !request.seeds.isEmpty && request.seeds.count <= maxSamples else {
            throw GenerationError(.invalidParameter, "samples per request must be 1...\(maxSamples), got \(request.seeds.count)")
        }
        guard request.maxNewTokens >= 1 else {
            throw GenerationError(.invalidParameter, "max new tokens must be ≥ 1, got \(request.maxNewTokens)")
        }
        guard request.topLogprobs >= 0 && request.topLogprobs <= Self.maxTopLogprobs else {
            throw GenerationError(.invalidParameter, "logprobs must be 0...\(Self.maxTopLogprobs), got \(request.topLogprobs)")
        }
        let total = request.promptTokens.count + request.maxNewTokens
        guard total <= contextLength else {
            throw GenerationError(
                .promptTooLong,
                "prompt of \(request.promptTokens.count) tokens + \(request.maxNewTokens) new tokens exceeds the context of \(contextLength)"
            )
        }
    }

    /// Appends `token`, drawn from `logits` whose log-normalizer is `logNormalizer`, to `sample`
    /// and updates its log-probability, text and stop state.
    private func accept(
        _ token: Int, logNormalizer: Float, into sample: inout SampleState, logits: UnsafePointer<Float>, request: GenerationRequest,
        stops: StopMatcher
    ) {
        let vocabulary = model.vocabularySize
        sample.cumulativeLogprob += Double(logits[token] - logNormalizer)
        if request.topLogprobs > 0 {
            let k = selectTop(logits, count: vocabulary, k: request.topLogprobs, into: logprobIds)
            sample.topLogprobs.append(
                (0..<k).map { TokenLogprob(id: Int(logprobIds[$0]), logprob: logits[Int(logprobIds[$0])] - logNormalizer) })
        }
        sample.append(token)
        if request.stopTokenIds.contains(token) {
            sample.finish(.eos)
            return
        }
        let previous = sample.text.count
        sample.text.append(contentsOf: tokenText[token])
        if let end = stops.match(in: sample.text, previousCount: previous) {
            sample.text.removeLast(sample.text.count - end)
            sample.finish(.stop)
        } else if sample.tokenIds.count >= request.maxNewTokens {
            sample.finish(.length)
        }
    }
}

/// One sample's progress.
struct SampleState {
    var sequence: PagedKVCache.SequenceID
    var random: SeededRandom
    var tokenIds: [Int] = []
    var text: [UInt8] = []
    var cumulativeLogprob = 0.0
    var topLogprobs: [[TokenLogprob]] = []
    var finishReason: FinishReason?
    /// Ended by its request's `GenerationControl.stop()`; its cache blocks are already released.
    var stopped = false
    /// Distinct ids so far, for the repetition penalty (empty when it is off).
    var seen: [Int32] = []
    private var seenFlags: [Bool]

    init(sequence: PagedKVCache.SequenceID, seed: UInt64, prompt: [Int], trackSeen: Bool, vocabularySize: Int, reserve: Int) {
        self.sequence = sequence
        random = SeededRandom(seed: seed)
        tokenIds.reserveCapacity(reserve)
        text.reserveCapacity(reserve * 8)
        seenFlags = trackSeen ? Array(repeating: false, count: vocabularySize) : []
        if trackSeen { for id in prompt { markSeen(id) } }
    }

    var finished: Bool { finishReason != nil || stopped }

    mutating func append(_ token: Int) {
        tokenIds.append(token)
        if !seenFlags.isEmpty { markSeen(token) }
    }

    mutating func finish(_ reason: FinishReason) { finishReason = reason }

    private mutating func markSeen(_ id: Int) {
        guard id >= 0 && id < seenFlags.count, !seenFlags[id] else { return }
        seenFlags[id] = true
        seen.append(Int32(id))
    }

    var result: GeneratedSample {
        GeneratedSample(
            tokenIds: tokenIds, text: String(decoding: text, as: UTF8.self),
            finishReason: finishReason ?? .length, cumulativeLogprob: cumulativeLogprob,
            topLogprobs: topLogprobs)
    }
}

extension TextGenerator {
    /// The length of the longest prefix of `bytes` that does not end inside a UTF-8 character.
    static func completeUTF8Length(_ bytes: [UInt8]) -> Int {
        var start = bytes.count
        while start > 0 && bytes.count - start < 4 {
            start -= 1
            let byte = bytes[start]
            guard byte & 0xC0 == 0x80 else {
                let length = byte < 0xC0 ? 1 : byte < 0xE0 ? 2 : byte < 0xF0 ? 3 : 4
                return bytes.count - start >= length ? bytes.count : start
            }
        }
        return bytes.count
    }

    /// Every id that ends a sequence: config.json's, generation_config.json's and the tokenizer's EOS.
    public func eosTokenIds(generationConfig: GenerationConfig?) -> Set<Int> {
        var ids = Set(model.eosTokenIds)
        ids.formUnion(generationConfig?.eosTokenIds ?? [])
        if let eos = tokenizer.eosToken, let id = tokenizer.id(forToken: eos) { ids.insert(id) }
        return ids
    }
}
