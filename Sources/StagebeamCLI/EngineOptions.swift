import ArgumentParser
import Foundation
import Generation
import Kernels
import LocalEngine
import ModelFormats
import Models
import Tokenization

/// Options shared by every command that loads a model.
struct EngineOptions: ParsableArguments {
    @Option(help: "Model directory in Hugging Face layout (config.json, *.safetensors, tokenizer.json).")
    var model: String

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("kv-capacity"), help: "KV cache size in tokens, shared by all sequences.")
    var kvCapacity: Int = 16384

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1") }
        if kvCapacity < 16 { throw ValidationError("--kv-capacity must be ≥ 16") }
    }

    var directory: URL { URL(fileURLWithPath: model) }

    /// `prefixCacheEntries`: prompts kept for reuse (0 for benchmarks, which must compute every prompt).
    func makeGenerator(prefixCacheEntries: Int = 8) throws -> TextGenerator {
        if let threads { ComputePool.shared = ComputePool(threads: threads) }
        let model = try LlamaModel(directory: directory, pool: .shared)
        let tokenizer = try Tokenizer(contentsOf: directory)
        return TextGenerator(model: model, tokenizer: tokenizer, kvCapacityTokens: kvCapacity,
                             prefixCacheEntries: prefixCacheEntries)
    }
}

extension EngineOptions {
    /// Generator and judge over one in-process engine.
    func makeLocalEngine() throws -> (generator: EngineCandidateGenerator, judge: EngineJudge) {
        let textGenerator = try makeGenerator()
        let executor = EngineExecutor(generator: textGenerator)
        let prompt = try ChatPrompt(tokenizer: textGenerator.tokenizer)
        let stopIds = textGenerator.eosTokenIds(generationConfig: try GenerationConfig.load(from: directory))
        return (EngineCandidateGenerator(executor: executor, prompt: prompt, stopTokenIds: stopIds),
                EngineJudge(executor: executor, prompt: prompt, stopTokenIds: stopIds))
    }
}

/// Writes `value` as one line of JSON with stable key order.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Prints to standard error (progress and timings, kept off the data on stdout).
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
