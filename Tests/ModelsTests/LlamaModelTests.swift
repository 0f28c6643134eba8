import Foundation
import Kernels
import Models
import Testing

/// The decoder against transformers on tiny random checkpoints of every supported variant.
@Suite struct LlamaModelTests {
    static let expectedModels = ["llama-f16", "llama-gqa", "llama-sharded-bf16", "llama3-rope-tied-bias", "mistral", "qwen2"]

    @Test func everyVariantHasAFixture() {
        #expect(Set(Self.expectedModels).isSubset(of: Set(ReferenceFixture.modelNames)))
    }

    @Test(arguments: expectedModels)
    func logitsMatchTransformers(model name: String) throws {
        let fixture = try ReferenceFixture.load(name)
        let model = try LlamaModel(directory: ReferenceFixture.directory(name), maxRows: 64, maxLogitRows: 64)
        let cache = model.makeCache(capacityTokens: 256)
        for prompt in fixture.prompts {
            let worst = try largestLogitError(model, cache, prompt)
            #expect(worst < 1e-4, "\(name) \"\(prompt.text)\": max |Δlogit| \(worst)")
        }
    }

    @Test(arguments: expectedModels)
    func greedyIdsMatchTransformers(model name: String) throws {
        let fixture = try ReferenceFixture.load(name)
        let model = try LlamaModel(directory: ReferenceFixture.directory(name), maxRows: 64, maxLogitRows: 8)
        let cache = model.makeCache(capacityTokens: 256)
        for prompt in fixture.prompts {
            let generated = try greedy(model, cache, prompt: prompt.input_ids, count: prompt.greedy_ids.count)
            #expect(generated == prompt.greedy_ids, "\(name) \"\(prompt.text)\"")
        }
    }

    /// With an f16 KV cache (each key and value rounded to f16 once) the logits stay within 0.01 of
    /// transformers' f32 ones and greedy decoding picks the same tokens on every variant.
    @Test(arguments: expectedModels)
    func halfCacheStaysCloseToTransformers(model name: String) throws {
        let fixture = try ReferenceFixture.load(name)
        let model = try LlamaModel(directory: ReferenceFixture.directory(name), maxRows: 64, maxLogitRows: 64)
        let cache = model.makeCache(capacityTokens: 256, type: .f16)
        for prompt in fixture.prompts {
            let worst = try largestLogitError(model, cache, prompt)
            #expect(worst < 1e-2, "\(name) \"\(prompt.text)\": max |Δlogit| \(worst) with an f16 cache")
            let generated = try greedy(model, cache, prompt: prompt.input_ids, count: prompt.greedy_ids.count)
            #expect(generated == prompt.greedy_ids, "\(name) \"\(prompt.text)\" with an f16 cache")
        }
    }

    /// Logits of a sequence are bit-identical whether it runs alone or beside others, and whether
    /// its prefix was prefilled in one pass or in chunks (docs/invariants.md, 1), with either cache.
    @Test(arguments: KVCacheType.allCases)
    func batchInvariance(cache type: KVCacheType) throws {
        let name = "llama-gqa"
        let prompts = try ReferenceFixture.load(name).prompts.map(\.input_ids)
        let model = try LlamaModel(directory: ReferenceFixture.directory(name), maxRows: 64, maxLogitRows: 8)
        let cache = model.makeCache(capacityTokens: 512, type: type)

        func lastLogits(of tokens: [Int], chunk: Int) throws -> [Float] {
            let sequence = cache.createSequence()
            defer { cache.release(sequence) }
            var result: [Float] = []
            var offset = 0
            while offset < tokens.count {
                let count = min(chunk, tokens.count - offset)
                let start = try cache.append(sequence, count: count)
                var batch = ForwardBatch(capacity: count)
                for j in 0..<count {
                    batch.append(
                        token: tokens[offset + j], sequence: sequence, position: start + j, wantsLogits: offset + j == tokens.count - 1)
                }
                let logits = try model.forward(batch, cache: cache)
                if offset + count == tokens.count { result = Array(logits) }
                offset += count
            }
            return result
        }

        let alone = try prompts.map { try lastLogits(of: $0, chunk: 64) }
        for chunk in [1, 3, 5] {
            #expect(try lastLogits(of: prompts[2], chunk: chunk) == alone[2], "chunked prefill (\(chunk)) differs")
        }

        // All prompts in one pass: each sequence's rows interleaved with the others'.
        let sequences = prompts.map { _ in cache.createSequence() }
        var batch = ForwardBatch(capacity: 64)
        for (s, tokens) in prompts.enumerated() {
            let start = try cache.append(sequences[s], count: tokens.count)
            for (i, token) in tokens.enumerated() {
                batch.append(token: token, sequence: sequences[s], position: start + i, wantsLogits: i == tokens.count - 1)
            }
        }
        let together = try model.forward(batch, cache: cache)
        for s in prompts.indices {
            let row = Array(together[(s * model.vocabularySize)..<((s + 1) * model.vocabularySize)])
            #expect(row == alone[s], "sequence \(s) changed when batched with others")
        }
        for sequence in sequences { cache.release(sequence) }
    }

    @Test func missingTensorIsNamed() throws {
        let source = ReferenceFixture.directory("llama-gqa")
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("stagebeam-missing-\(UUID())")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: copy) }
        var config =
            try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as! [String: Any]
        config["num_hidden_layers"] = 3 // the checkpoint has two
        try JSONSerialization.data(withJSONObject: config).write(to: copy.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(
            at: source.appendingPathComponent("model.safetensors"), to: copy.appendingPathComponent("model.safetensors"))
        #expect { _ = try LlamaModel(directory: copy) } throws: { "\($0)".contains("model.layers.2.input_layernorm.weight") }
    }
}

/// Greedy decoding straight on the model: prefill, then one token at a time.
/// The largest |logit − transformers' logit| over every position of `prompt`, prefilled in one pass.
func largestLogitError(_ model: LlamaModel, _ cache: PagedKVCache, _ prompt: ReferenceFixture.Prompt) throws -> Float {
    let sequence = cache.createSequence()
    defer { cache.release(sequence) }
    let start = try cache.append(sequence, count: prompt.input_ids.count)
    var batch = ForwardBatch(capacity: prompt.input_ids.count)
    for (i, token) in prompt.input_ids.enumerated() {
        batch.append(token: token, sequence: sequence, position: start + i, wantsLogits: true)
    }
    let logits = try model.forward(batch, cache: cache)
    var worst: Float = 0
    for (row, expected) in prompt.logits.enumerated() {
        for (j, value) in expected.enumerated() {
            worst = max(worst, abs(logits[row * model.vocabularySize + j] - value))
        }
    }
    return worst
}

func greedy(_ model: LlamaModel, _ cache: PagedKVCache, prompt: [Int], count: Int) throws -> [Int] {
    let sequence = cache.createSequence()
    defer { cache.release(sequence) }
    var batch = ForwardBatch(capacity: prompt.count)
    let start = try cache.append(sequence, count: prompt.count)
    for (i, token) in prompt.enumerated() {
        batch.append(token: token, sequence: sequence, position: start + i, wantsLogits: i == prompt.count - 1)
    }
    var logits = try model.forward(batch, cache: cache)
    var output: [Int] = []
    while output.count < count {
        let next = argmaxOf(logits)
        output.append(next)
        batch.removeAll()
        batch.append(token: next, sequence: sequence, position: try cache.append(sequence, count: 1), wantsLogits: true)
        logits = try model.forward(batch, cache: cache)
    }
    return output
}

private func argmaxOf(_ values: UnsafeBufferPointer<Float>) -> Int {
    var best = 0
    for i in values.indices where values[i] > values[best] { best = i }
    return best
}
