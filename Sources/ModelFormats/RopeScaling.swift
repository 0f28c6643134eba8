import JSON

/// RoPE frequency scaling from `rope_scaling` (transformers 4.x) or `rope_parameters`
/// (transformers 5.x). Older files spell `rope_type` as `type`.
public struct RopeScaling: Decodable, Sendable, Equatable {
    /// "llama3", "linear", "dynamic", "yarn", …: which ones run is the model's decision.
    public var ropeType: String
    public var factor: Float
    public var lowFreqFactor: Float?
    public var highFreqFactor: Float?
    public var originalMaxPositionEmbeddings: Int?
    /// YaRN's ramp bounds (rotations; transformers' defaults 32 and 1 when absent) and the factor
    /// on cos and sin (0.1·ln(factor) + 1 when absent).
    public var betaFast: Float?
    public var betaSlow: Float?
    public var attentionFactor: Float?

    public init(
        ropeType: String, factor: Float, lowFreqFactor: Float? = nil, highFreqFactor: Float? = nil,
        originalMaxPositionEmbeddings: Int? = nil, betaFast: Float? = nil, betaSlow: Float? = nil, attentionFactor: Float? = nil
    ) {
        self.ropeType = ropeType
        self.factor = factor
        self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
        self.betaFast = betaFast
        self.betaSlow = betaSlow
        self.attentionFactor = attentionFactor
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: JSONKey.self)
        guard let type = try c.optional(String.self, "rope_type") ?? c.optional(String.self, "type") else {
            throw DecodingError.keyNotFound(
                JSONKey("rope_type"), .init(codingPath: c.codingPath, debugDescription: "rope scaling without rope_type or type"))
        }
        ropeType = type
        factor = try c.optional(Float.self, "factor") ?? 1
        lowFreqFactor = try c.optional(Float.self, "low_freq_factor")
        highFreqFactor = try c.optional(Float.self, "high_freq_factor")
        originalMaxPositionEmbeddings = try c.optional(Int.self, "original_max_position_embeddings")
        betaFast = try c.optional(Float.self, "beta_fast")
        betaSlow = try c.optional(Float.self, "beta_slow")
        attentionFactor = try c.optional(Float.self, "attention_factor")
    }
}
