import CKernels
import Foundation
import Testing

/// Attention over an f16 KV cache (`sb_attention_half`): the vector kernel against its portable
/// form and against the definition computed in double precision.
@Suite struct HalfAttentionTests {
    /// A paged cache of one layer and head: `blocks` blocks of `blockSize` positions, filled with
    /// f16 values, and a sequence whose blocks are taken out of order (as a forked sequence's are).
    struct Cache {
        let headDim: Int, blockSize = 16
        let keys: [UInt16], values: [UInt16]
        let order: [Int32]

        init(headDim: Int, positions: Int, state: inout UInt64) {
            self.headDim = headDim
            let blocks = (positions + blockSize - 1) / blockSize + 2
            func half() -> UInt16 { Float16(Self.next(&state) * 4 - 2).bitPattern }
            keys = (0..<blocks * blockSize * headDim).map { _ in half() }
            values = (0..<blocks * blockSize * headDim).map { _ in half() }
            order = (0..<Int32(blocks)).reversed().map { $0 }
        }

        static func next(_ state: inout UInt64) -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }

        func element(_ storage: [UInt16], _ p: Int, _ i: Int) -> Double {
            Double(Float(Float16(bitPattern: storage[Int(order[p / blockSize]) * blockSize * headDim + p % blockSize * headDim + i])))
        }

        func run(_ q: [Float], first: Int, last: Int, portable: Bool) -> [Float] {
            var scores = [Float](repeating: 0, count: last - first + 1), out = [Float](repeating: .nan, count: headDim)
            let stride = Int64(blockSize * headDim)
            let attention = portable ? sb_attention_half_portable : sb_attention_half
            attention(
                q, keys, values, order, stride, Int64(blockSize), Int64(headDim), Int64(first), Int64(last), 0.125, &scores, &out)
            return out
        }
    }

    @Test(arguments: [64, 128, 80, 12])
    func vectorEqualsPortableAndDefinition(headDim: Int) {
        var state: UInt64 = UInt64(headDim)
        let cache = Cache(headDim: headDim, positions: 70, state: &state)
        let q = (0..<headDim).map { _ in Cache.next(&state) * 2 - 1 }
        for (first, last) in [(0, 0), (0, 2), (0, 69), (5, 40), (17, 18)] {
            let vector = cache.run(q, first: first, last: last, portable: false)
            let portable = cache.run(q, first: first, last: last, portable: true)
            #expect(vector.map(\.bitPattern) == portable.map(\.bitPattern), "head \(headDim), positions \(first)...\(last)")
            let scores = (first...last).map { p in
                0.125 * (0..<headDim).reduce(0.0) { $0 + Double(q[$1]) * cache.element(cache.keys, p, $1) }
            }
            let maximum = scores.max()!
            let weights = scores.map { Foundation.exp($0 - maximum) }
            let total = weights.reduce(0, +)
            for c in 0..<headDim {
                let exact = zip(first...last, weights).reduce(0.0) { $0 + $1.1 / total * cache.element(cache.values, $1.0, c) }
                #expect(abs(Double(vector[c]) - exact) < 1e-5, "head \(headDim), positions \(first)...\(last), column \(c)")
            }
        }
    }
}
