import Foundation
import JSON

/// `generation_config.json`: the ids that end generation and the sampling defaults the model's
/// authors chose. Every key is optional.
public struct GenerationConfig: Decodable, Sendable {
    /// `eos_token_id` as a list (it may be written as an int, a list or null).
    public var eosTokenIds: [Int]
    public var bosTokenId: Int?
    public var doSample: Bool?
    public var temperature: Float?
    public var topP: Float?
    public var topK: Int?
    public var repetitionPenalty: Float?

    /// The stop ids alone (a GGUF file's `tokenizer.ggml.eos_token_id`).
    public init(eosTokenIds: [Int], bosTokenId: Int? = nil) {
        self.eosTokenIds = eosTokenIds
        self.bosTokenId = bosTokenId
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: JSONKey.self)
        eosTokenIds = try c.tokenIds("eos_token_id")
        bosTokenId = try c.optional(Int.self, "bos_token_id")
        doSample = try c.optional(Bool.self, "do_sample")
        temperature = try c.optional(Float.self, "temperature")
        topP = try c.optional(Float.self, "top_p")
        topK = try c.optional(Int.self, "top_k")
        repetitionPenalty = try c.optional(Float.self, "repetition_penalty")
    }

    public static let fileName = "generation_config.json"

    /// nil when the directory has no generation_config.json.
    public static func load(from directory: URL) throws -> GenerationConfig? {
        let url = directory.appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try decodeConfig(GenerationConfig.self, from: url)
    }
}
