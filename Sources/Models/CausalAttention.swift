import CKernels
import Kernels

/// Causal (optionally sliding-window) attention of every (row, head) of a batch over its
/// sequence's paged KV cache. Each (row, head) is computed alone, in position order, so results do
/// not depend on batching; an f16 cache is read by CKernels' `sb_attention_half`, which does the
/// same. A reusable parallel task: the model keeps one, so a layer's attention allocates nothing.
final class CausalAttention: ParallelTask {
    let heads: Int, headDim: Int, group: Int
    let window: Int?
    let scale: Float
    /// (threads, scoreCapacity) attention probabilities, one row per thread.
    private var scores: UnsafeMutablePointer<Float>
    private var scoreCapacity = 0
    private let threads: Int

    // The call being run.
    private var layer = 0
    private var batch: ForwardBatch?
    private unowned(unsafe) var cache: PagedKVCache?
    private var query: UnsafePointer<Float>? // (rows, heads·headDim)
    private var output: UnsafeMutablePointer<Float>? // (rows, heads·headDim)

    init(heads: Int, kvHeads: Int, headDim: Int, slidingWindow: Int?, threads: Int) {
        self.heads = heads
        self.headDim = headDim
        self.group = heads / kvHeads
        self.window = slidingWindow
        self.scale = 1 / Float(headDim).squareRoot()
        self.threads = threads
        scores = .allocate(capacity: 0)
    }

    deinit { scores.deallocate() }

    func callAsFunction(
        layer: Int, batch: ForwardBatch, cache: PagedKVCache, query: UnsafePointer<Float>,
        into output: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        ensureScoreCapacity(cache.capacityBlocks * cache.blockSize)
        (self.layer, self.batch, self.cache, self.query, self.output) = (layer, batch, cache, query, output)
        pool.run(self, count: batch.count * heads)
        (self.batch, self.cache, self.query, self.output) = (nil, nil, nil, nil)
    }

    func run(chunk: Int, start: Int, end: Int) {
        guard let batch, let cache, let query, let output else { return }
        let probabilities = scores + chunk * scoreCapacity
        let qWidth = heads * headDim, blockSize = cache.blockSize
        var currentRow = -1
        var blocks: [Int32] = []
        for item in start..<end {
            let r = Self.row(at: item / heads, of: batch.count), h = item % heads, g = h / group
            if r != currentRow { blocks = cache.blocks(of: batch.sequences[r]); currentRow = r }
            let position = Int(batch.positions[r])
            let first = window.map { max(0, position - $0 + 1) } ?? 0
            let q = query + r * qWidth + h * headDim
            if cache.type == .f16 {
                let (keys, values) = cache.halfBases(layer: layer, head: g)
                blocks.withUnsafeBufferPointer { ids in
                    sb_attention_half(
                        q, keys, values, ids.baseAddress, Int64(cache.blockStride), Int64(blockSize), Int64(headDim), Int64(first),
                        Int64(position), scale, probabilities, output + r * qWidth + h * headDim)
                }
                continue
            }
            func key(_ p: Int) -> UnsafePointer<Float> {
                UnsafePointer(cache.keyBase(block: blocks[p / blockSize], layer: layer, head: g) + (p % blockSize) * headDim)
            }
            // Four positions' scores at a time (each one `dot`'s bits).
            var p = first
            while p + 4 <= position + 1 {
                let scores = dot4(q, key(p), key(p + 1), key(p + 2), key(p + 3), count: headDim) * scale
                for i in 0..<4 { probabilities[p - first + i] = scores[i] }
                p += 4
            }
            while p <= position {
                probabilities[p - first] = dot(q, key(p), count: headDim) * scale
                p += 1
            }
            softmax(probabilities, count: position - first + 1)
            weightedSum(probabilities, count: position - first + 1, width: headDim, into: output + r * qWidth + h * headDim) { j in
                UnsafePointer(
                    cache.valueBase(block: blocks[(first + j) / blockSize], layer: layer, head: g) + (first + j) % blockSize * headDim)
            }
        }
    }

    /// The batch row at place `index` of the work order: rows from both ends alternately (0, n-1, 1,
    /// n-2, …). A prompt's rows attend to more positions the later they are, so in row order the
    /// thread given the last rows of a prefill had about three times the work of the first; taken
    /// from both ends, every contiguous share of the order costs about the same.
    static func row(at index: Int, of count: Int) -> Int {
        index % 2 == 0 ? index / 2 : count - 1 - index / 2
    }

    /// Room for the longest sequence a cache can hold; grows (rarely) with a bigger cache.
    private func ensureScoreCapacity(_ tokens: Int) {
        guard tokens > scoreCapacity else { return }
        scores.deallocate()
        scores = .allocate(capacity: threads * tokens)
        scoreCapacity = tokens
    }
}
