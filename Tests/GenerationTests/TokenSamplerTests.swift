import Foundation
import Testing

@testable import Generation

@Suite struct TokenSamplerTests {
    let logits: [Float] = [1.0, 3.0, 2.0, 3.0, -1.0, 0.5]

    func draw(_ parameters: SamplingParameters, seed: UInt64 = 1, seen: [Int32] = [], count: Int = 1) -> [Int] {
        let sampler = TokenSampler(vocabularySize: logits.count)
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in
            logits.withUnsafeBufferPointer { l in
                seen.withUnsafeBufferPointer { sampler.sample(logits: l.baseAddress!, parameters: parameters, seen: $0, random: &random) }
            }
        }
    }

    @Test func greedyTakesFirstMaximum() {
        #expect(draw(.greedy) == [1])
        #expect(draw(SamplingParameters(temperature: 0, repetitionPenalty: 2), seen: [1]) == [3], "the penalty demotes a seen token")
    }

    @Test func filtersNarrowTheChoice() {
        #expect(Set(draw(SamplingParameters(temperature: 1, topK: 2), count: 200)) == [1, 3])
        #expect(Set(draw(SamplingParameters(temperature: 1, topP: 0.3), count: 200)) == [1], "ties keep the lower id first")
        // p(2)/p(best) = e^-1 ≈ 0.37, p(0)/p(best) = e^-2 ≈ 0.14.
        #expect(Set(draw(SamplingParameters(temperature: 1, minP: 0.3), count: 300)) == [1, 2, 3])
        #expect(Set(draw(SamplingParameters(temperature: 1, minP: 0.5), count: 300)) == [1, 3])
    }

    /// Frequencies follow softmax(logits / T) (a loose bound; 20,000 draws).
    @Test func frequenciesFollowTheDistribution() {
        let temperature: Float = 0.7
        let draws = draw(SamplingParameters(temperature: temperature), count: 20_000)
        let weights = logits.map { expf($0 / temperature) }
        let total = weights.reduce(0, +)
        for id in logits.indices {
            let observed = Float(draws.filter { $0 == id }.count) / 20_000
            #expect(abs(observed - weights[id] / total) < 0.015, "id \(id)")
        }
    }

    @Test func seedDeterminesTheSequence() {
        let p = SamplingParameters(temperature: 1)
        #expect(draw(p, seed: 5, count: 50) == draw(p, seed: 5, count: 50))
        #expect(draw(p, seed: 5, count: 50) != draw(p, seed: 6, count: 50))
    }

    @Test func selectionAndSortingOrder() {
        var ids = [Int32](repeating: -1, count: 4)
        #expect(selectTop(logits, count: logits.count, k: 4, into: &ids) == 4)
        #expect(ids == [1, 3, 2, 0])
        var all: [Int32] = [0, 1, 2, 3, 4, 5]
        heapSortBestFirst(&all, count: 6, by: logits)
        #expect(all == [1, 3, 2, 0, 5, 4])
    }
}
