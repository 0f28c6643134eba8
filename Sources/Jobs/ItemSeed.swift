import Search
import Wire

/// An item's search seed, a pure function of the batch seed (`--seed`) and the item id, so that an
/// item gets the same seed — and so the same answer — whether it runs first, last, or after a resume,
/// and whatever else is in the batch:
///
///     h    = the first 8 bytes of SHA-256(UTF-8 id), read big-endian
///     seed = mix(mix(batchSeed ^ 0x6974656D) &+ γ &+ mix(h))
///
/// with `mix` SplitMix64's finalizer (`SeedDerivation.mix`), γ = 0x9E3779B97F4A7C15 and 0x6974656D
/// ASCII "item": the same chain `SeedDerivation` uses for candidate and judge seeds.
public enum ItemSeed {
    static let domain: UInt64 = 0x6974_656D
    static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    public static func seed(batch: UInt64, id: String) -> UInt64 {
        var hasher = SHA256()
        hasher.update(Array(id.utf8))
        let h = hasher.finalize().prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return SeedDerivation.mix(SeedDerivation.mix(batch ^ domain) &+ gamma &+ SeedDerivation.mix(h))
    }
}
