/// How a token is drawn from the logits. Filters apply in transformers' order: repetition
/// penalty, temperature, top-k, top-p, min-p. Temperature 0 means greedy (argmax).
public struct SamplingParameters: Sendable, Equatable, Codable {
    public var temperature: Float
    /// 0 disables.
    public var topK: Int
    /// 1 disables.
    public var topP: Float
    /// 0 disables: tokens below `minP × p(best)` are dropped.
    public var minP: Float
    /// 1 disables; >1 discourages tokens already in the prompt or output (as transformers).
    public var repetitionPenalty: Float

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, minP: Float = 0, repetitionPenalty: Float = 1) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
    }

    public static let greedy = SamplingParameters(temperature: 0)

    public var isGreedy: Bool { temperature == 0 }

    /// Checks ranges; the message names the parameter.
    public func validate() throws(GenerationError) {
        guard temperature >= 0, temperature.isFinite else {
            throw GenerationError(.invalidParameter, "temperature must be ≥ 0, got \(temperature)")
        }
        guard topK >= 0 else { throw GenerationError(.invalidParameter, "top-k must be ≥ 0, got \(topK)") }
        guard topP > 0 && topP <= 1 else { throw GenerationError(.invalidParameter, "top-p must be in (0, 1], got \(topP)") }
        guard minP >= 0 && minP < 1 else { throw GenerationError(.invalidParameter, "min-p must be in [0, 1), got \(minP)") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else {
            throw GenerationError(.invalidParameter, "repetition penalty must be > 0, got \(repetitionPenalty)")
        }
    }
}
