import Foundation
import JSON
import Kernels
import ModelFormats
import Models
import Tokenization

/// A reward model in Hugging Face's sequence-classification form (`LlamaForSequenceClassification`,
/// `Qwen2ForSequenceClassification`, `MistralForSequenceClassification`): the decoder, then the
/// `score` head (labels × hidden, no bias) on the final-normed hidden state of the last token that is
/// not padding, as transformers picks it (the rightmost id other than `pad_token_id`; the last token
/// when there is no pad id). A reward model has one label: its value is the reward.
public final class RewardModel: @unchecked Sendable {
    public let url: URL
    /// The registry key that chose it (the checkpoint's class name).
    public let architecture: String
    public let network: LlamaModel
    public let tokenizer: Tokenizer
    public let padTokenId: Int?
    private let cache: PagedKVCache
    private var batch: ForwardBatch

    init(url: URL, architecture: String, network: LlamaModel, tokenizer: Tokenizer, padTokenId: Int?, kvCapacityTokens: Int) {
        self.url = url
        self.architecture = architecture
        self.network = network
        self.tokenizer = tokenizer
        self.padTokenId = padTokenId
        self.cache = network.makeCache(capacityTokens: kvCapacityTokens)
        self.batch = ForwardBatch(capacity: network.maxRows)
    }

    /// Reads a reward model directory through the model loader's registry.
    public static func load(_ url: URL, options: ModelLoader.Options = ModelLoader.Options(), kvCapacityTokens: Int = 16384) throws
        -> RewardModel
    {
        try ModelLoader.loadRewardModel(url, options: options, kvCapacityTokens: kvCapacityTokens)
    }

    public var contextLength: Int { network.config.maxPositionEmbeddings }

    /// The reward of each token list. The lists' common prefix is computed once and shared; their
    /// tails run together in passes of up to the network's row capacity. Not thread-safe: one caller
    /// at a time (the scorer runs it on its own queue).
    public func rewards(_ inputs: [[Int]]) throws -> [Float] {
        // Tokens after the scored one cannot change it (causal attention): drop them.
        let scored = inputs.map { ids -> [Int] in
            guard let pad = padTokenId else { return ids }
            guard let last = ids.lastIndex(where: { $0 != pad }) else { return Array(ids.prefix(1)) }
            return Array(ids[...last])
        }
        for ids in scored {
            guard !ids.isEmpty else { throw GenerationError(.emptyPrompt, "a reward input has no tokens") }
            guard ids.count <= contextLength else {
                throw GenerationError(.promptTooLong, "a reward input of \(ids.count) tokens exceeds the context of \(contextLength)")
            }
        }
        var rewards: [Float] = []
        var start = 0
        while start < scored.count {
            let group = Array(scored[start..<min(scored.count, start + network.maxLogitRows)])
            rewards += try rewardGroup(group)
            start += group.count
        }
        return rewards
    }

    private func rewardGroup(_ inputs: [[Int]]) throws -> [Float] {
        let shortest = inputs.map(\.count).min()!
        var shared = 0
        while shared < shortest - 1, inputs.allSatisfy({ $0[shared] == inputs[0][shared] }) { shared += 1 }
        let base = cache.createSequence()
        var sequences = [base]
        defer { for sequence in sequences { cache.release(sequence) } }
        try prefill(inputs[0][..<shared], into: base)
        let forks = inputs.map { _ in cache.fork(base) }
        sequences += forks
        // Each input's tail, packed into passes; the last row of each gives its reward.
        var rewards = [Float](repeating: 0, count: inputs.count)
        var next = [Int](repeating: shared, count: inputs.count)
        var pending = Array(inputs.indices)
        while !pending.isEmpty {
            batch.removeAll()
            var ending: [Int] = []
            for i in pending where batch.count < network.maxRows {
                let chunk = min(network.maxRows - batch.count, inputs[i].count - next[i])
                let first = try reserve(forks[i], count: chunk)
                for j in 0..<chunk {
                    let p = next[i] + j
                    batch.append(token: inputs[i][p], sequence: forks[i], position: first + j, wantsLogits: p == inputs[i].count - 1)
                }
                next[i] += chunk
                if next[i] == inputs[i].count { ending.append(i) }
            }
            let outputs = try network.forward(batch, cache: cache)
            for (r, i) in ending.enumerated() { rewards[i] = outputs[r * network.outputSize] }
            pending.removeAll { next[$0] == inputs[$0].count }
        }
        return rewards
    }

    /// Runs `tokens` into `sequence` in chunks of the row capacity (no outputs wanted).
    private func prefill(_ tokens: ArraySlice<Int>, into sequence: PagedKVCache.SequenceID) throws {
        var offset = tokens.startIndex
        while offset < tokens.endIndex {
            let chunk = min(network.maxRows, tokens.endIndex - offset)
            batch.removeAll()
            let first = try reserve(sequence, count: chunk)
            for j in 0..<chunk {
                batch.append(token: tokens[offset + j], sequence: sequence, position: first + j, wantsLogits: false)
            }
            _ = try network.forward(batch, cache: cache)
            offset += chunk
        }
    }

    private func reserve(_ sequence: PagedKVCache.SequenceID, count: Int) throws -> Int {
        do { return try cache.append(sequence, count: count) } catch {
            throw GenerationError(.cacheFull, error.description)
        }
    }
}
