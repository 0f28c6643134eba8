import Kernels

/// Multi-head attention of every row over every row (a vision encoder's), as matrix products: per
/// head, its queries and keys copied out of the interleaved heads and its values transposed, then
/// per block of query rows the scores against all keys and the probabilities against the values,
/// each one `linear` call on its blocked tiles. A dot product per query and key and a weighted sum
/// per query computed the same about three times slower on Llama 3.2 Vision's 6,432 rows
/// (docs/performance.md, "Vision prompts"). Scratch memory is allocated once, for `rows` rows; not
/// for concurrent use.
final class BidirectionalAttention {
    let rows: Int, headDim: Int
    /// One head's queries and keys (rows, headDim), its values transposed (headDim, rows).
    private let headQuery, headKeys, headValues: UnsafeMutablePointer<Float>
    private let scores: UnsafeMutablePointer<Float> // (blockRows, rows)
    private let headOutput: UnsafeMutablePointer<Float> // (blockRows, headDim)
    /// Query rows whose scores are held at once (Llama 3.2 11B Vision: 256 × 6,432 floats, 6.6 MB).
    static let blockRows = 256

    init(rows: Int, headDim: Int) {
        (self.rows, self.headDim) = (rows, headDim)
        headQuery = .allocate(capacity: rows * headDim)
        headKeys = .allocate(capacity: rows * headDim)
        headValues = .allocate(capacity: rows * headDim)
        scores = .allocate(capacity: min(Self.blockRows, rows) * rows)
        headOutput = .allocate(capacity: min(Self.blockRows, rows) * headDim)
    }

    deinit {
        for buffer in [headQuery, headKeys, headValues, scores, headOutput] { buffer.deallocate() }
    }

    /// `attended` (rows, width) from `query`, `key` and `value` (rows, width), `width / headDim` heads
    /// side by side in each row, scores scaled by 1/√headDim. With `masked`, a masked query row does
    /// not attend to masked key rows (transformers' Mllama aspect-ratio mask); every other pair
    /// attends.
    func callAsFunction(
        query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>, width: Int,
        masked: UnsafePointer<Bool>? = nil, into attended: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        let (rows, headDim, scores) = (rows, headDim, scores)
        let scale = 1 / Float(headDim).squareRoot()
        for h in 0..<(width / headDim) {
            for r in 0..<rows {
                (headQuery + r * headDim).update(from: query + r * width + h * headDim, count: headDim)
                (headKeys + r * headDim).update(from: key + r * width + h * headDim, count: headDim)
                for d in 0..<headDim { headValues[d * rows + r] = value[r * width + h * headDim + d] }
            }
            let keys = WeightMatrix(f32: headKeys, rows: rows, columns: headDim)
            let values = WeightMatrix(f32: headValues, rows: headDim, columns: rows)
            for first in stride(from: 0, to: rows, by: Self.blockRows) {
                let count = min(Self.blockRows, rows - first)
                linear(headQuery + first * headDim, rows: count, weight: keys, into: scores, pool: pool)
                pool.parallelChunks(count: count) { _, start, end in
                    for i in start..<end {
                        let row = scores + i * rows
                        if let masked, masked[first + i] {
                            for j in 0..<rows { row[j] = masked[j] ? -.infinity : row[j] * scale }
                        } else {
                            for j in 0..<rows { row[j] *= scale }
                        }
                        softmax(row, count: rows)
                    }
                }
                linear(scores, rows: count, weight: values, into: headOutput, pool: pool)
                for i in 0..<count {
                    (attended + (first + i) * width + h * headDim).update(from: headOutput + i * headDim, count: headDim)
                }
            }
        }
    }
}
