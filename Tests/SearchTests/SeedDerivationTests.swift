import Testing

@testable import Search

@Suite struct SeedDerivationTests {
    // Values printed by scripts/fixtures/search_seed_vectors.py, an independent implementation of the
    // formula documented in SeedDerivation.swift.
    @Test func matchesIndependentImplementation() {
        #expect(SeedDerivation.candidateSeed(job: 42, unit: 0, candidate: 0) == 0x3bfb_2651_d6e9_51e2)
        #expect(SeedDerivation.candidateSeed(job: 42, unit: 3, candidate: 7) == 0x7ff8_bd16_2d49_e958)
        #expect(SeedDerivation.candidateSeed(job: .max, unit: 1, candidate: 2) == 0x745d_93b6_b352_38f3)
        #expect(SeedDerivation.judgeSeed(job: 42, unit: 2, match: 5, order: .reversed) == 0xd631_04b7_a7c2_e14f)
        #expect(SeedDerivation.pairingSeed(job: 42, unit: 4) == 0x01a1_bede_f660_bff4)
    }

    // The published SplitMix64 sequence for seed 0.
    @Test func splitMixMatchesPublishedSequence() {
        var rng = SplitMix64(seed: 0)
        #expect(rng.next() == 0xe220_a839_7b1d_cdaf)
        #expect(rng.next() == 0x6e78_9e6a_a1b9_65f4)
        #expect(rng.next() == 0x06c4_5d18_8009_454f)
    }

    @Test func seedsDifferAcrossEveryCoordinate() {
        var seen = Set<UInt64>()
        for job: UInt64 in [0, 1, 42] {
            for unit in 0..<6 {
                for c in 0..<8 { seen.insert(SeedDerivation.candidateSeed(job: job, unit: unit, candidate: c)) }
                for m in 0..<7 {
                    seen.insert(SeedDerivation.judgeSeed(job: job, unit: unit, match: m, order: .forward))
                    seen.insert(SeedDerivation.judgeSeed(job: job, unit: unit, match: m, order: .reversed))
                }
                seen.insert(SeedDerivation.pairingSeed(job: job, unit: unit))
            }
        }
        #expect(seen.count == 3 * 6 * (8 + 14 + 1))
        // Swapping unit and candidate gives another seed.
        #expect(SeedDerivation.candidateSeed(job: 7, unit: 1, candidate: 2) != SeedDerivation.candidateSeed(job: 7, unit: 2, candidate: 1))
    }

    @Test func uniformStaysInRangeAndCoversIt() {
        var rng = SplitMix64(seed: 9)
        var counts = [Int](repeating: 0, count: 5)
        for _ in 0..<5000 { counts[rng.uniform(5)] += 1 }
        #expect(counts.allSatisfy { $0 > 800 && $0 < 1200 }, "counts \(counts)")
        #expect(rng.uniform(1) == 0)
    }
}
