import Generation
import Kernels
import Models
import Synchronization
import Testing

@Suite struct TextGeneratorTests {
    /// Tokenizer + prefill + decode end to end equal transformers' greedy generate.
    @Test(arguments: ["llama-gqa", "qwen2", "llama-sharded-bf16"])
    func greedyEqualsTransformers(model name: String) throws {
        let generator = try ModelFixture.generator(name)
        for prompt in try ModelFixture.reference(name).prompts {
            let tokens = generator.tokenizer.encode(prompt.text)
            #expect(tokens == prompt.input_ids)
            let output = try generator.generate(
                GenerationRequest(
                    promptTokens: tokens, seeds: [0], sampling: .greedy, maxNewTokens: prompt.greedy_ids.count))
            #expect(output.samples[0].tokenIds == prompt.greedy_ids)
            #expect(output.samples[0].finishReason == .length)
        }
    }

    /// A sample's tokens depend on its seed only: not on the other samples of its batch, nor on
    /// whether its prompt came from the prefix cache (docs/invariants.md, 1), with either KV cache.
    @Test(arguments: KVCacheType.allCases)
    func samplesAreBatchAndCacheInvariant(kvCacheType: KVCacheType) throws {
        let generator = try ModelFixture.generator("llama-gqa", kvCacheType: kvCacheType)
        let prompt = try ModelFixture.reference("llama-gqa").prompts[1].input_ids
        let sampling = SamplingParameters(temperature: 0.9, topK: 50, topP: 0.95)
        let seeds: [UInt64] = [11, 12, 13, 14]
        let together = try generator.generate(GenerationRequest(promptTokens: prompt, seeds: seeds, sampling: sampling, maxNewTokens: 24))
        #expect(Set(together.samples.map(\.tokenIds)).count > 1, "different seeds give different samples")
        let cold = try ModelFixture.generator("llama-gqa", prefixCacheEntries: 0, kvCacheType: kvCacheType)
        for (i, seed) in seeds.enumerated() {
            let alone = try cold.generate(GenerationRequest(promptTokens: prompt, seeds: [seed], sampling: sampling, maxNewTokens: 24))
            #expect(alone.samples[0].tokenIds == together.samples[i].tokenIds, "seed \(seed)")
            #expect(alone.samples[0].cumulativeLogprob == together.samples[i].cumulativeLogprob)
        }
        let again = try generator.generate(GenerationRequest(promptTokens: prompt, seeds: seeds, sampling: sampling, maxNewTokens: 24))
        #expect(again.timings.cachedPromptTokens == prompt.count - 1, "the prompt came from the prefix cache")
        #expect(again.samples.map(\.tokenIds) == together.samples.map(\.tokenIds))
    }

    /// Samples that draw the same tokens share one forward row until they part, and every sample's
    /// tokens and log-probability are still those it gets alone. Greedy samples never part: four
    /// cost the rows of one. A kept sample that shared its rows leaves a cached prefix as good as
    /// one decoded alone.
    @Test func samplesWritingTheSameTokensShareRows() throws {
        let prompt = try ModelFixture.reference("llama-gqa").prompts[1].input_ids
        let cold = try ModelFixture.generator("llama-gqa", prefixCacheEntries: 0)
        let one = try cold.generate(GenerationRequest(promptTokens: prompt, seeds: [1], sampling: .greedy, maxNewTokens: 20))
        let four = try cold.generate(GenerationRequest(promptTokens: prompt, seeds: [1, 2, 3, 4], sampling: .greedy, maxNewTokens: 20))
        #expect(four.samples.allSatisfy { $0.tokenIds == one.samples[0].tokenIds })
        #expect(four.timings.decodeTokens == 4 * one.timings.decodeTokens)
        // The last token is drawn, never run.
        #expect(four.timings.decodeRows == one.timings.decodeRows && one.timings.decodeRows == one.samples[0].tokenIds.count - 1)

        // Drawn from the top two tokens, 12 samples of 3 tokens share their first steps, part at
        // different ones, and some write the same text (there are only 8 texts).
        let sampling = SamplingParameters(temperature: 1, topK: 2)
        let seeds: [UInt64] = Array(61...72)
        let together = try cold.generate(GenerationRequest(promptTokens: prompt, seeds: seeds, sampling: sampling, maxNewTokens: 3))
        #expect(Set(together.samples.map(\.tokenIds)).count > 1)
        // Without sharing: 2 rows per sample; with it at most 2 + 4 in all.
        #expect(together.timings.decodeRows <= 6)
        for (i, seed) in seeds.enumerated() {
            let alone = try cold.generate(GenerationRequest(promptTokens: prompt, seeds: [seed], sampling: sampling, maxNewTokens: 3))
            #expect(alone.samples[0].tokenIds == together.samples[i].tokenIds, "seed \(seed)")
            #expect(alone.samples[0].cumulativeLogprob == together.samples[i].cumulativeLogprob)
        }

        let warm = try ModelFixture.generator("llama-gqa")
        let kept = try warm.generate(
            GenerationRequest(promptTokens: prompt, seeds: seeds, sampling: sampling, maxNewTokens: 3, keepSamples: true))
        // A sample that wrote an earlier sample's tokens shared that sample's rows to the end.
        let follower = try #require(
            kept.samples.indices.first { i in kept.samples[..<i].contains { $0.tokenIds == kept.samples[i].tokenIds } })
        let extended = prompt + kept.samples[follower].tokenIds
        let next = try warm.generate(GenerationRequest(promptTokens: extended, seeds: [1], sampling: .greedy, maxNewTokens: 8))
        #expect(next.timings.cachedPromptTokens == extended.count - 1)
        let fresh = try cold.generate(GenerationRequest(promptTokens: extended, seeds: [1], sampling: .greedy, maxNewTokens: 8))
        #expect(next.samples[0].tokenIds == fresh.samples[0].tokenIds)
    }

    /// Samples that do not fit the KV cache together decode in parts that do: the same tokens,
    /// log-probabilities and streamed text as in one batch; one that does not fit alone is refused
    /// with `cacheFull`, naming the cache's size.
    @Test func samplesBeyondTheCacheDecodeInParts() throws {
        let prompt = try ModelFixture.reference("llama-gqa").prompts[1].input_ids
        let sampling = SamplingParameters(temperature: 0.9, topK: 50, topP: 0.95)
        let seeds: [UInt64] = [31, 32, 33, 34, 35]
        let roomy = try ModelFixture.generator("llama-gqa")
        let together = try roomy.generate(GenerationRequest(promptTokens: prompt, seeds: seeds, sampling: sampling, maxNewTokens: 24))
        // Room for the prompt and two samples' worst case, not five.
        let small = try ModelFixture.generator("llama-gqa", kvCapacity: prompt.count + 2 * (24 + 16))
        let pieces = Mutex<[SampleText]>([])
        let control = GenerationControl(textInterval: .zero) { texts in pieces.withLock { $0 += texts } }
        let parts = try small.generate(
            GenerationRequest(promptTokens: prompt, seeds: seeds, sampling: sampling, maxNewTokens: 24, control: control))
        #expect(parts.samples.map(\.tokenIds) == together.samples.map(\.tokenIds))
        #expect(parts.samples.map(\.cumulativeLogprob) == together.samples.map(\.cumulativeLogprob))
        #expect(parts.timings.decodeTokens == together.timings.decodeTokens)
        let received = pieces.withLock { $0 }
        for (index, sample) in parts.samples.enumerated() {
            #expect(received.filter { $0.index == index }.map(\.text).joined() == sample.text, "sample \(index)")
        }
        // Two requests that do not fit together are split between them, each answered in order.
        let other = try ModelFixture.reference("llama-gqa").prompts[2].input_ids
        let pair = [
            GenerationRequest(promptTokens: prompt, seeds: [41, 42], sampling: sampling, maxNewTokens: 24),
            GenerationRequest(promptTokens: other, seeds: [43], sampling: sampling, maxNewTokens: 24)
        ]
        #expect(try small.generate(pair).map { $0.samples.map(\.tokenIds) } == roomy.generate(pair).map { $0.samples.map(\.tokenIds) })

        let tiny = try ModelFixture.generator("llama-gqa", kvCapacity: 32)
        do {
            _ = try tiny.generate(GenerationRequest(promptTokens: prompt, seeds: [1], sampling: .greedy, maxNewTokens: 24))
            Issue.record("a sample larger than the whole cache was accepted")
        } catch let error as GenerationError {
            #expect(error.code == .cacheFull && error.message.contains("the KV cache holds 32"), "\(error)")
        }
    }

    /// A decode step draws its samples' tokens across the pool's threads (`SampleDraws`): tokens,
    /// log-probabilities and top alternatives are those of one thread, with every filter on.
    @Test func drawsDoNotDependOnThreads() throws {
        let prompt = try ModelFixture.reference("llama-gqa").prompts[2].input_ids
        let sampling = SamplingParameters(temperature: 0.8, topK: 40, topP: 0.9, minP: 0.01, repetitionPenalty: 1.2)
        let request = GenerationRequest(
            promptTokens: prompt, seeds: [51, 52, 53, 54, 55], sampling: sampling, maxNewTokens: 20, topLogprobs: 3)
        let one = try ModelFixture.generator("llama-gqa", pool: ComputePool(threads: 1)).generate(request)
        let three = try ModelFixture.generator("llama-gqa", pool: ComputePool(threads: 3)).generate(request)
        #expect(Set(one.samples.map(\.tokenIds)).count > 1)
        for (a, b) in zip(one.samples, three.samples) {
            #expect(a.tokenIds == b.tokenIds)
            #expect(a.cumulativeLogprob == b.cumulativeLogprob)
            #expect(a.topLogprobs == b.topLogprobs)
        }
    }

    /// A prompt extending a cached one prefills only its new tokens and gives the cold result.
    @Test func extendedPromptReusesPrefix() throws {
        let prompt = try ModelFixture.reference("llama-gqa").prompts[2].input_ids
        let warm = try ModelFixture.generator("llama-gqa")
        _ = try warm.generate(GenerationRequest(promptTokens: Array(prompt.prefix(10)), seeds: [1], sampling: .greedy, maxNewTokens: 2))
        let extended = try warm.generate(GenerationRequest(promptTokens: prompt, seeds: [1], sampling: .greedy, maxNewTokens: 8))
        #expect(extended.timings.cachedPromptTokens == 10 && extended.timings.prefillTokens == prompt.count - 10)
        let cold = try ModelFixture.generator("llama-gqa", prefixCacheEntries: 0)
        #expect(
            try cold.generate(GenerationRequest(promptTokens: prompt, seeds: [1], sampling: .greedy, maxNewTokens: 8)).samples[0].tokenIds
                == extended.samples[0].tokenIds)
    }

    /// Stop strings are found across token boundaries; the text ends with the stop string.
    @Test func stopStringAcrossTokens() throws {
        let generator = try ModelFixture.generator("llama-gqa")
        let prompt = try ModelFixture.reference("llama-gqa").prompts[0].input_ids
        let free = try generator.generate(GenerationRequest(promptTokens: prompt, seeds: [0], sampling: .greedy, maxNewTokens: 12)).samples[
            0]
        // A two-byte stop string: the last byte of token k's text and the first of token k+1's,
        // both ASCII, and not occurring earlier in the output.
        let pieces = free.tokenIds.map { generator.tokenizer.tokenBytes($0) }
        let k = try #require(
            (0..<(pieces.count - 1)).first { k in
                guard let last = pieces[k].last, let first = pieces[k + 1].first, last < 128, first < 128 else { return false }
                let before = pieces[0...k].flatMap { $0 }.dropLast()
                return String(decoding: before, as: UTF8.self).range(of: String(decoding: [last, first], as: UTF8.self)) == nil
            })
        let stop = String(decoding: [pieces[k].last!, pieces[k + 1].first!], as: UTF8.self)
        let prefixBytes = pieces[0...k].flatMap { $0 }
        let stopped = try generator.generate(
            GenerationRequest(promptTokens: prompt, seeds: [0], sampling: .greedy, maxNewTokens: 12, stopStrings: [stop])
        ).samples[0]
        #expect(stopped.finishReason == .stop)
        #expect(stopped.tokenIds == Array(free.tokenIds.prefix(k + 2)))
        #expect(Array(stopped.text.utf8) == prefixBytes + [pieces[k + 1].first!])
    }

    @Test func eosStopsAndIsKeptInIds() throws {
        let generator = try ModelFixture.generator("llama-gqa")
        let prompt = try ModelFixture.reference("llama-gqa").prompts[0]
        // Treat a token the model produces (for the first time) at step i as EOS.
        let i = try #require((1..<prompt.greedy_ids.count).first { !prompt.greedy_ids[..<$0].contains(prompt.greedy_ids[$0]) })
        let output = try generator.generate(
            GenerationRequest(
                promptTokens: prompt.input_ids, seeds: [0], sampling: .greedy, maxNewTokens: 12, stopTokenIds: [prompt.greedy_ids[i]]))
        #expect(output.samples[0].finishReason == .eos)
        #expect(output.samples[0].tokenIds == Array(prompt.greedy_ids.prefix(i + 1)))
    }

    @Test func topLogprobsAreNormalisedAndSorted() throws {
        let generator = try ModelFixture.generator("llama-gqa")
        let prompt = try ModelFixture.reference("llama-gqa").prompts[0]
        let sample = try generator.generate(
            GenerationRequest(promptTokens: prompt.input_ids, seeds: [0], sampling: .greedy, maxNewTokens: 4, topLogprobs: 5)
        ).samples[0]
        #expect(sample.topLogprobs.count == 4)
        for (step, top) in sample.topLogprobs.enumerated() {
            #expect(top.count == 5 && top[0].id == sample.tokenIds[step], "greedy picks the most likely token")
            #expect(zip(top, top.dropFirst()).allSatisfy { $0.logprob >= $1.logprob })
            #expect(top.allSatisfy { $0.logprob <= 0 })
        }
        #expect(abs(sample.cumulativeLogprob - sample.topLogprobs.reduce(0) { $0 + Double($1[0].logprob) }) < 1e-4)
    }

    /// Teacher-forced scores equal the per-step log-probabilities of generation.
    @Test func scoredContinuationsMatchGeneration() throws {
        let generator = try ModelFixture.generator("llama-gqa")
        let prompt = try ModelFixture.reference("llama-gqa").prompts[1]
        let sample = try generator.generate(
            GenerationRequest(promptTokens: prompt.input_ids, seeds: [0], sampling: .greedy, maxNewTokens: 3)
        ).samples[0]
        let scores = try generator.scoreContinuations(prompt: prompt.input_ids, continuations: [sample.tokenIds, [sample.tokenIds[0]], []])
        #expect(abs(scores[0] - sample.cumulativeLogprob) < 1e-4)
        #expect(scores[1] <= 0 && scores[1] >= scores[0])
        #expect(scores[2] == 0)
    }

    @Test func badRequestsAreNamed() throws {
        let generator = try ModelFixture.generator("llama-gqa")
        func failure(_ request: GenerationRequest) -> String {
            do { _ = try generator.generate(request); return "" } catch { return "\(error)" }
        }
        #expect(failure(GenerationRequest(promptTokens: [], seeds: [0], sampling: .greedy, maxNewTokens: 1)).contains("emptyPrompt"))
        #expect(
            failure(GenerationRequest(promptTokens: [1], seeds: [0], sampling: .greedy, maxNewTokens: 100_000)).contains("promptTooLong"))
        #expect(
            failure(GenerationRequest(promptTokens: [1], seeds: Array(0..<100), sampling: .greedy, maxNewTokens: 1)).contains(
                "samples per request"))
        #expect(
            failure(GenerationRequest(promptTokens: [1], seeds: [0], sampling: SamplingParameters(topP: 0), maxNewTokens: 1)).contains(
                "top-p"))
        #expect(
            failure(GenerationRequest(promptTokens: [1_000_000], seeds: [0], sampling: .greedy, maxNewTokens: 1)).contains("vocabulary"))
        // The generator keeps serving after errors.
        #expect(failure(GenerationRequest(promptTokens: [1, 2], seeds: [0], sampling: .greedy, maxNewTokens: 2)) == "")
    }
}
