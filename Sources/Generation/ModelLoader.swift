import Foundation
import JSON
import Kernels
import ModelFormats
import Models
import Tokenization

/// A model read from disk, ready to serve: its network, its tokenizer (with the chat template) and
/// the ids that end a turn.
public struct LoadedModel: Sendable {
    /// The networks the engine runs.
    public enum Network: Sendable {
        /// A Llama-family decoder (Llama, Qwen2, Mistral).
        case text(LlamaModel)
        /// LLaVA: a vision tower and projector before a Llama-family decoder.
        case llava(LlavaModel)
        /// Llama 3.2 Vision: a decoder with cross-attention to the image.
        case mllama(MllamaModel)
    }

    /// The directory or GGUF file it was read from.
    public let url: URL
    /// The registry key that chose the network (`model_type`, or a GGUF `general.architecture`).
    public let architecture: String
    public let network: Network
    public let tokenizer: Tokenizer
    /// generation_config.json of a directory, or a GGUF file's EOS/EOT ids (nil when there is neither).
    public let generationConfig: GenerationConfig?

    /// A generator over this model. `prefixCacheEntries`: prompts kept for reuse (0 for benchmarks,
    /// which must compute every prompt). `kvCacheType`: how the KV cache stores keys and values.
    public func makeGenerator(kvCapacityTokens: Int, kvCacheType: KVCacheType = .f32, prefixCacheEntries: Int = 8) -> TextGenerator {
        switch network {
        case .text(let model):
            TextGenerator(
                model: model, tokenizer: tokenizer, kvCapacityTokens: kvCapacityTokens, kvCacheType: kvCacheType,
                prefixCacheEntries: prefixCacheEntries)
        case .llava(let llava):
            TextGenerator(
                model: llava.language, vision: llava, tokenizer: tokenizer, kvCapacityTokens: kvCapacityTokens, kvCacheType: kvCacheType,
                prefixCacheEntries: prefixCacheEntries)
        case .mllama(let mllama):
            TextGenerator(
                mllama: mllama, tokenizer: tokenizer, kvCapacityTokens: kvCapacityTokens, kvCacheType: kvCacheType,
                prefixCacheEntries: prefixCacheEntries)
        }
    }
}

/// Reads a model from a Hugging Face directory or a GGUF file, choosing the network by a registry
/// keyed by architecture: config.json's `model_type` (or, without one, its `architectures` class
/// names) for a directory, `general.architecture` for a GGUF file. An architecture missing from the
/// registry is an error naming it and the known ones. Adding an architecture is adding an entry.
public enum ModelLoader {
    /// How big a forward pass the loaded network is sized for, and the threads it computes on.
    public struct Options: Sendable {
        public var maxRows: Int
        public var maxLogitRows: Int
        public var pool: ComputePool

        public init(maxRows: Int = 128, maxLogitRows: Int = 64, pool: ComputePool = .shared) {
            self.maxRows = maxRows
            self.maxLogitRows = maxLogitRows
            self.pool = pool
        }
    }

    typealias DirectoryLoader = @Sendable (URL, Options) throws -> LoadedModel.Network
    typealias GGUFLoader = @Sendable (GGUFFile, Options) throws -> LoadedModel.Network

    /// Hugging Face directories, by config.json's `model_type`.
    static let directoryArchitectures: [String: DirectoryLoader] = {
        let text: DirectoryLoader = { url, o in
            .text(try LlamaModel(directory: url, maxRows: o.maxRows, maxLogitRows: o.maxLogitRows, pool: o.pool))
        }
        return [
            "llama": text, "mistral": text, "qwen2": text,
            "llava": { url, o in .llava(try LlavaModel(directory: url, maxRows: o.maxRows, maxLogitRows: o.maxLogitRows, pool: o.pool)) },
            "mllama": { url, o in .mllama(try MllamaModel(directory: url, maxRows: o.maxRows, maxLogitRows: o.maxLogitRows, pool: o.pool)) }
        ]
    }()

    /// config.json files without `model_type` name the class instead.
    static let modelTypeOfClass = [
        "LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2",
        "LlavaForConditionalGeneration": "llava", "MllamaForConditionalGeneration": "mllama"
    ]

    typealias RewardLoader = @Sendable (URL, Options, _ labels: Int) throws -> LlamaModel

    /// Reward models (sequence classifiers), by config.json's class name.
    static let rewardArchitectures: [String: RewardLoader] = {
        let decoder: RewardLoader = { url, o, labels in
            let checkpoint = try Checkpoint(directory: url)
            let model = try LlamaModel(
                config: TextModelConfig.load(from: url), checkpoint: checkpoint, names: .sequenceClassification(labels: labels),
                maxRows: o.maxRows, maxLogitRows: o.maxLogitRows, pool: o.pool)
            try checkpoint.verifyAllConsumed(ignoring: { $0.hasSuffix("rotary_emb.inv_freq") })
            return model
        }
        return Dictionary(uniqueKeysWithValues: TextModelConfig.sequenceClassificationArchitectures.map { ($0, decoder) })
    }()

    /// GGUF files, by `general.architecture`.
    static let ggufArchitectures: [String: GGUFLoader] = {
        let text: GGUFLoader = { file, o in
            .text(try LlamaModel(gguf: file, maxRows: o.maxRows, maxLogitRows: o.maxLogitRows, pool: o.pool))
        }
        return ["llama": text, "qwen2": text]
    }()

    /// The architectures the registry knows, for help texts and errors.
    public static var knownArchitectures: (directory: [String], gguf: [String]) {
        (directoryArchitectures.keys.sorted(), ggufArchitectures.keys.sorted())
    }

    /// Whether `url` names a GGUF file (by its first four bytes, "GGUF").
    public static func isGGUF(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let handle = FileHandle(forReadingAtPath: url.path)
        else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data("GGUF".utf8)
    }

    /// Reads the model at `url`: a Hugging Face directory or a GGUF file.
    public static func load(_ url: URL, options: Options = Options()) throws -> LoadedModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ModelFormatError(.fileNotFound, "no model at \(url.path) (a model directory or a .gguf file)")
        }
        if isDirectory.boolValue { return try loadDirectory(url, options: options) }
        guard isGGUF(url) else {
            throw ModelFormatError(
                .malformedHeader, "\(url.path) is a file but not a GGUF file; a model is a Hugging Face directory or a .gguf file")
        }
        return try loadGGUF(url, options: options)
    }

    /// The registry key of a directory: config.json's `model_type`, else its first known class name.
    public static func architecture(ofDirectory url: URL) throws -> String {
        let configURL = url.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelFormatError(.fileNotFound, "\(url.path) has no config.json")
        }
        let object: JSONObject
        do {
            object = try JSONObject.read(configURL)
        } catch {
            throw ModelFormatError(.badConfig, error.message)
        }
        if let modelType = object["model_type"]?.string { return modelType }
        let classes = object["architectures"]?.array?.compactMap(\.string) ?? []
        guard let known = classes.lazy.compactMap({ modelTypeOfClass[$0] }).first else {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "\(configURL.path) has no model_type, and its architectures \(classes) are none of the known classes")
        }
        return known
    }

    /// The reward-model class a directory's config.json names, if any.
    public static func rewardArchitecture(ofDirectory url: URL) -> String? {
        guard let object = try? JSONObject.read(url.appendingPathComponent("config.json")) else { return nil }
        let classes = object["architectures"]?.array?.compactMap(\.string) ?? []
        return classes.first { rewardArchitectures[$0] != nil }
    }

    /// Reads a reward model directory: a sequence classifier with one label (`id2label` with one
    /// entry, or `num_labels` 1), its tokenizer, and config.json's `pad_token_id`.
    public static func loadRewardModel(_ url: URL, options: Options = Options(), kvCapacityTokens: Int = 16384) throws -> RewardModel {
        guard FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path) else {
            throw ModelFormatError(.fileNotFound, "no reward model at \(url.path) (a directory with config.json)")
        }
        let object: JSONObject
        do {
            object = try JSONObject.read(url.appendingPathComponent("config.json"))
        } catch {
            throw ModelFormatError(.badConfig, error.message)
        }
        let classes = object["architectures"]?.array?.compactMap(\.string) ?? []
        guard let architecture = classes.first(where: { rewardArchitectures[$0] != nil }), let load = rewardArchitectures[architecture]
        else {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "\(url.path)/config.json: architectures \(classes) name no reward model (supported: \(rewardArchitectures.keys.sorted().joined(separator: ", ")))"
            )
        }
        let labels = object["num_labels"]?.integer ?? object["id2label"]?.object?.count ?? 2
        guard labels == 1 else {
            throw ModelFormatError(
                .unsupportedArchitecture, "\(url.path): a reward model has one label (its reward); this \(architecture) has \(labels)")
        }
        let tokenizer = try Tokenizer(contentsOf: url)
        // transformers reads the pad id from config.json only.
        return RewardModel(
            url: url, architecture: architecture, network: try load(url, options, labels), tokenizer: tokenizer,
            padTokenId: object["pad_token_id"]?.integer,
            kvCapacityTokens: kvCapacityTokens)
    }

    static func loadDirectory(_ url: URL, options: Options) throws -> LoadedModel {
        if let reward = rewardArchitecture(ofDirectory: url) {
            throw ModelFormatError(
                .unsupportedArchitecture, "\(url.path) is a reward model (\(reward)), not a generator: give it as --reward-model")
        }
        let architecture = try architecture(ofDirectory: url)
        guard let load = directoryArchitectures[architecture] else {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "\(url.path)/config.json: model_type '\(architecture)' is not supported (supported: \(knownArchitectures.directory.joined(separator: ", ")))"
            )
        }
        let network = try load(url, options)
        return LoadedModel(
            url: url, architecture: architecture, network: network, tokenizer: try Tokenizer(contentsOf: url),
            generationConfig: try GenerationConfig.load(from: url))
    }

    static func loadGGUF(_ url: URL, options: Options) throws -> LoadedModel {
        let file = try GGUFFile(url: url)
        let architecture = try file.string("general.architecture")
        if HuggingFaceQuantized.isWeightsFile(file) {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "\(url.path) holds the weights of a quantized checkpoint directory (stagebeam quantize): give the directory, "
                    + "--model \(url.deletingLastPathComponent().path)")
        }
        guard let load = ggufArchitectures[architecture] else {
            throw ModelFormatError(
                .unsupportedArchitecture,
                "\(url.path): GGUF architecture '\(architecture)' is not supported (supported: \(knownArchitectures.gguf.joined(separator: ", ")))"
            )
        }
        let network = try load(file, options)
        // llama.cpp ends generation at EOS and at the end-of-turn / end-of-message tokens.
        let stops = try ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]
            .compactMap { try file.optionalInteger($0) }
        return LoadedModel(
            url: url, architecture: architecture, network: network, tokenizer: try Tokenizer(gguf: file),
            generationConfig: GenerationConfig(eosTokenIds: stops, bosTokenId: try file.optionalInteger("tokenizer.ggml.bos_token_id")))
    }
}
