import Kernels

/// The keys and values that every cross-attention layer of a Llama 3.2 Vision decoder reads for one
/// image: `k_norm(k_proj(states))` and `v_proj(states)` of the projected vision output. They are the
/// expensive, constant part of an image prompt, so they are computed once per image
/// (`MllamaModel.imageStates`) and shared, read-only, by every sequence that shows the image — the
/// prompt, its forked candidates, judge calls — through `MllamaImageContext`.
public final class MllamaImageStates: @unchecked Sendable {
    /// Vision rows: every tile's class token and patches, padding tiles included.
    public let rows: Int
    /// Rows of the tiles that hold the image (the first `tileCount` tiles): what a token at or after
    /// the `<|image|>` token attends to.
    public let attendedRows: Int
    public let tileCount: Int
    let layers: Int, kvHeads: Int, headDim: Int
    /// The decoder whose k_proj / v_proj made them: no other may read them.
    let owner: ObjectIdentifier
    /// (cross layers, kvHeads, rows, headDim) each, so one head's keys are contiguous.
    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>

    init(owner: ObjectIdentifier, layers: Int, kvHeads: Int, headDim: Int, rows: Int, tileCount: Int, tileRows: Int) {
        self.owner = owner
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.rows = rows
        self.tileCount = tileCount
        self.attendedRows = tileCount * tileRows
        keys = .allocate(capacity: max(1, layers * kvHeads * rows * headDim))
        values = .allocate(capacity: max(1, layers * kvHeads * rows * headDim))
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Bytes held (keys and values of every cross layer).
    public var byteCount: Int { 2 * layers * kvHeads * rows * headDim * MemoryLayout<Float>.size }

    @inline(__always)
    func keyBase(layer: Int, head: Int) -> UnsafeMutablePointer<Float> { keys + ((layer * kvHeads + head) * rows) * headDim }

    @inline(__always)
    func valueBase(layer: Int, head: Int) -> UnsafeMutablePointer<Float> { values + ((layer * kvHeads + head) * rows) * headDim }
}

/// What the cross-attention layers of a sequence see: an image's states and the position of its
/// `<|image|>` token. Tokens at or after that position attend to the image's tiles; tokens before it
/// have (in transformers' mask) no tile to attend to, so — exactly as transformers computes it — they
/// attend to every vision row unmasked and their cross-attention MLP output is dropped. A sequence
/// without an image passes no context, and its cross-attention layers are skipped.
/// A value: a forked sequence (candidate, judge call) passes the same context as its prefix.
public struct MllamaImageContext: Sendable {
    public let states: MllamaImageStates
    public let imagePosition: Int

    public init(states: MllamaImageStates, imagePosition: Int) {
        self.states = states
        self.imagePosition = imagePosition
    }
}

/// Cross-attention of every (row, head) of a batch over an image's keys and values; each computed
/// alone, so results do not depend on batching. A reusable parallel task: allocates nothing per call.
final class MllamaCrossAttention: ParallelTask {
    let heads: Int, headDim: Int, group: Int
    let scale: Float
    private var scores: UnsafeMutablePointer<Float>
    private var scoreCapacity = 0
    private let threads: Int

    // The call being run.
    private var layer = 0
    private var context: MllamaImageContext?
    private var positions: UnsafePointer<Int32>?
    private var query: UnsafePointer<Float>? // (rows, heads·headDim), q_norm applied
    private var output: UnsafeMutablePointer<Float>? // (rows, heads·headDim)

    init(heads: Int, kvHeads: Int, headDim: Int, threads: Int) {
        self.heads = heads
        self.headDim = headDim
        self.group = heads / kvHeads
        self.scale = 1 / Float(headDim).squareRoot()
        self.threads = threads
        scores = .allocate(capacity: 0)
    }

    deinit { scores.deallocate() }

    func callAsFunction(
        layer: Int, context: MllamaImageContext, positions: UnsafePointer<Int32>, rows: Int,
        query: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        ensureScoreCapacity(context.states.rows)
        (self.layer, self.context, self.positions, self.query, self.output) = (layer, context, positions, query, output)
        pool.run(self, count: rows * heads)
        (self.context, self.positions, self.query, self.output) = (nil, nil, nil, nil)
    }

    func run(chunk: Int, start: Int, end: Int) {
        guard let context, let positions, let query, let output else { return }
        let states = context.states
        let probabilities = scores + chunk * scoreCapacity
        let qWidth = heads * headDim
        for item in start..<end {
            let r = item / heads, h = item % heads, g = h / group
            let count = Int(positions[r]) >= context.imagePosition ? states.attendedRows : states.rows
            let q = query + r * qWidth + h * headDim
            let keys = states.keyBase(layer: layer, head: g), values = states.valueBase(layer: layer, head: g)
            for j in 0..<count { probabilities[j] = dot(q, keys + j * headDim, count: headDim) * scale }
            softmax(probabilities, count: count)
            let out = output + r * qWidth + h * headDim
            out.initialize(repeating: 0, count: headDim)
            for j in 0..<count { axpy(probabilities[j], values + j * headDim, out, count: headDim) }
        }
    }

    private func ensureScoreCapacity(_ rows: Int) {
        guard rows > scoreCapacity else { return }
        scores.deallocate()
        scores = .allocate(capacity: threads * rows)
        scoreCapacity = rows
    }
}
