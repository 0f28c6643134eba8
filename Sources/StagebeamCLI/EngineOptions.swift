import ArgumentParser
import ChatTemplates
import Foundation
import Generation
import Jobs
import Kernels
import LocalEngine
import ModelFormats
import Models
import Search
import Tokenization
import Wire

/// Options shared by every command that loads a model.
struct EngineOptions: ParsableArguments {
    @Option(
        help:
            "Model: a directory in Hugging Face layout (config.json, *.safetensors, tokenizer.json) or a GGUF file; default: $STAGEBEAM_MODEL, else the built-in models/stagebeam-shapes (here, or above the executable)."
    )
    var model: String?

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(
        name: .customLong("kv-capacity"),
        help: "KV cache size in tokens, shared by all sequences (candidates that need more together decode in parts).")
    var kvCapacity: Int = 16384

    @Option(
        name: .customLong("kv-type"),
        help:
            "How the KV cache stores keys and values: f32 (logits as an f32 reference computes them) or f16 (half the memory and half the bytes attention reads; each key and value rounded to f16 once)."
    )
    var kvCacheType: KVCacheType = .f32

    @Option(name: .customLong("chat-template"), help: "A Jinja chat template file to use instead of tokenizer_config.json's.")
    var chatTemplatePath: String?

    /// The template given with --chat-template, if any.
    func chatTemplate() throws -> ChatTemplate? {
        try chatTemplatePath.map { try ChatTemplate(source: readText($0, what: "--chat-template")) }
    }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1") }
        if kvCapacity < 16 { throw ValidationError("--kv-capacity must be ≥ 16") }
    }

    /// --model, or else the built-in model (see `BuiltInModel`).
    var directory: URL {
        get throws { try model.map { URL(fileURLWithPath: $0) } ?? BuiltInModel.current.directory() }
    }

    /// The model at --model (a directory or a GGUF file), read through the library's loader registry.
    func loadModel() throws -> LoadedModel {
        if let threads { ComputePool.shared = ComputePool(threads: threads) }
        return try ModelLoader.load(try directory, options: ModelLoader.Options(pool: .shared))
    }

    /// `prefixCacheEntries`: prompts kept for reuse (0 for benchmarks, which must compute every prompt).
    func makeGenerator(prefixCacheEntries: Int = 8) throws -> TextGenerator {
        try loadModel().makeGenerator(kvCapacityTokens: kvCapacity, kvCacheType: kvCacheType, prefixCacheEntries: prefixCacheEntries)
    }
}

extension EngineOptions {
    /// An image file as the engine takes it: bytes and their SHA-256, which keys the caches.
    func loadImage(_ path: String) throws -> PromptImage {
        let data = try readFile(path, what: "--image")
        return PromptImage(hash: ContentHash.sha256Hex(data), data: data)
    }

    /// Generator, judge and self-reward scorer over one in-process engine, sharing `images`.
    /// `keepCandidates`: the generator keeps every candidate's keys and values for the scorer (the
    /// prefix cache then has room for a whole stage's candidates besides its usual entries).
    func makeLocalEngine(images: ImageStore, prefixCacheEntries: Int = 8, keepCandidates: Bool = false) throws -> (
        generator: EngineCandidateGenerator, judge: EngineJudge, scorer: EngineScorer
    ) {
        let model = try loadModel()
        let textGenerator = model.makeGenerator(
            kvCapacityTokens: kvCapacity, kvCacheType: kvCacheType,
            prefixCacheEntries: prefixCacheEntries + (keepCandidates ? SearchConfig.maxBeam : 0))
        let executor = EngineExecutor(generator: textGenerator)
        let prompt = try ChatPrompt(tokenizer: textGenerator.tokenizer, template: try chatTemplate())
        let stopIds = textGenerator.eosTokenIds(generationConfig: model.generationConfig)
        return (
            EngineCandidateGenerator(
                executor: executor, prompt: prompt, stopTokenIds: stopIds, images: images, keepCandidates: keepCandidates),
            EngineJudge(executor: executor, prompt: prompt, stopTokenIds: stopIds, images: images),
            EngineScorer(executor: executor, prompt: prompt, images: images)
        )
    }

    /// The scorer `scoring` asks for: the reward model it names, else the engine's self-reward.
    func makeScorer(_ scoring: ScorerOptions, selfReward: EngineScorer) throws -> any Scorer {
        guard let path = scoring.rewardModel else { return selfReward }
        return try loadRewardModel(path)
    }

    /// The scorer of the reward model at `path` (`--reward-model`), on these options' threads.
    func loadRewardModel(_ path: String) throws -> RewardModelScorer {
        if let threads { ComputePool.shared = ComputePool(threads: threads) }
        return try RewardModelScorer(
            model: RewardModel.load(URL(fileURLWithPath: path), options: ModelLoader.Options(pool: .shared), kvCapacityTokens: kvCapacity))
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

extension KVCacheType: ExpressibleByArgument {}
