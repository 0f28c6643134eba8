/// Sampler settings sent with every generate (and generate-mode judge) request.
public struct Sampling: Codable, Sendable, Hashable {
    /// 0 means greedy (argmax); the seed is then irrelevant.
    public var temperature: Double
    /// Nucleus threshold in (0, 1]; 1 disables it.
    public var topP: Double
    /// Keep the k most likely tokens; 0 disables it.
    public var topK: Int

    public init(temperature: Double, topP: Double = 1, topK: Int = 0) {
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
    }

    /// What the reference implementation uses for candidates and judge calls alike.
    public static let reference = Sampling(temperature: 0.6, topP: 0.9, topK: 0)
    public static let greedy = Sampling(temperature: 0, topP: 1, topK: 0)

    func validate(_ what: String) throws {
        guard temperature.isFinite, temperature >= 0 else {
            throw SearchError(.invalidConfiguration, "\(what) temperature must be a finite number ≥ 0, got \(temperature)")
        }
        guard topP.isFinite, topP > 0, topP <= 1 else {
            throw SearchError(.invalidConfiguration, "\(what) top-p must be in (0, 1], got \(topP)")
        }
        guard topK >= 0 else {
            throw SearchError(.invalidConfiguration, "\(what) top-k must be ≥ 0 (0 disables it), got \(topK)")
        }
    }
}
