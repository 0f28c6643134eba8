/// Every seed of a job derives from the job seed alone, by pure functions, so the same job gives the
/// same seeds whoever executes which part in which order (docs/invariants.md, 1).
///
/// The mixer is SplitMix64's finalizer `mix` (Steele, Lea & Flood 2014), a bijection on UInt64 with
/// full avalanche. A seed is a chain `h = mix(job ^ domain)`, then `h = mix(h &+ γ &+ mix(x))` for each
/// coordinate x in order, with γ = 0x9E3779B97F4A7C15. The domain constant keeps candidate, judge and
/// pairing seeds apart even when their coordinates coincide. Written out so another implementation
/// (a client in another language) can reproduce them bit for bit.
public enum SeedDerivation {
    static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// Domain constants: ASCII "cand", "judg", "pair".
    static let candidateDomain: UInt64 = 0x6361_6E64
    static let judgeDomain: UInt64 = 0x6A75_6467
    static let pairingDomain: UInt64 = 0x7061_6972

    /// SplitMix64's output function.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func chain(_ job: UInt64, domain: UInt64, _ coordinates: [UInt64]) -> UInt64 {
        var h = mix(job ^ domain)
        for x in coordinates { h = mix(h &+ gamma &+ mix(x)) }
        return h
    }

    /// The sampler seed of candidate `candidate` in generation unit `unit`.
    /// A unit is a stage (stage and best-of-N methods: 0…3) or a sentence (sentence method: 0, 1, 2, …
    /// counted across the whole answer).
    public static func candidateSeed(job: UInt64, unit: Int, candidate: Int) -> UInt64 {
        chain(job, domain: candidateDomain, [UInt64(truncatingIfNeeded: unit), UInt64(truncatingIfNeeded: candidate)])
    }

    /// The seed of one judge call: match `match` of unit `unit`'s tournament, in order `order`.
    /// Best-of-N's final tournament is unit 4 (after the four stages).
    public static func judgeSeed(job: UInt64, unit: Int, match: Int, order: JudgeOrder) -> UInt64 {
        chain(
            job, domain: judgeDomain,
            [
                UInt64(truncatingIfNeeded: unit), UInt64(truncatingIfNeeded: match),
                order == .forward ? 0 : 1
            ])
    }

    /// The seed of the pairing generator of unit `unit`'s tournament.
    public static func pairingSeed(job: UInt64, unit: Int) -> UInt64 {
        chain(job, domain: pairingDomain, [UInt64(truncatingIfNeeded: unit)])
    }
}

/// Which way round a judge call shows the two candidates of a match.
public enum JudgeOrder: String, Codable, Sendable, Hashable {
    /// The match's first entrant is shown as the first response.
    case forward
    /// The match's second entrant is shown first (the extra call of `judgeBothOrders`).
    case reversed
}

/// SplitMix64 as a random number generator, for tournament pairing.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= SeedDerivation.gamma
        return SeedDerivation.mix(state)
    }

    /// Uniform in 0..<n by rejection of the low `2^64 mod n` values. Spelled out (rather than
    /// `Int.random(in:using:)`, whose algorithm the standard library does not promise) so that pairing
    /// is reproducible across Swift versions and languages.
    public mutating func uniform(_ n: Int) -> Int {
        precondition(n > 0, "uniform(0)")
        let bound = UInt64(n)
        let threshold = (0 &- bound) % bound
        while true {
            let r = next()
            if r >= threshold { return Int(r % bound) }
        }
    }
}
