import CKernels

/// `y[t, o] = bias[o] + Σ_k x[t, k] · w[o, k]` — the one hot function of the engine.
///
/// Shapes: `x` (rows, inFeatures) row-major f32; `weight` (outFeatures, inFeatures) row-major, exactly
/// as a Hugging Face checkpoint or a GGUF file stores it (float weights are used in place, quantized
/// rows packed once at load: `WeightMatrix.packedForProducts()`); `y` (rows, outFeatures).
///
/// The kernels are C (CKernels: Swift's SIMD8<Float16> conversions measured 4× slower than f32's loads).
///
/// **Batch-invariant by construction.** Every output element is one SIMD8 accumulator that walks
/// `k` in the same order with fused multiply-adds, then is reduced in a fixed order. Which other rows
/// share the call, how rows are tiled and how output columns are split across threads change only
/// *when* an element is computed, never the arithmetic that computes it. So a sequence's logits do
/// not depend on what else is in its batch, and a prefix prefilled in one call equals the same
/// prefix prefilled in chunks (docs/invariants.md, 1 and 6).
///
/// **Quantized weights** (q8_0 … q6_K) go through CKernels: `x` is first quantized per row to int8 in
/// blocks of 32 (scale max|x|/127, round to nearest even, as llama.cpp quantizes activations for its
/// quantized dot products). Each output is then one f32 accumulator over the row's 32-blocks in
/// order, adding each block's exact integer dot product times the two blocks' scales with one fused
/// multiply-add (the minimums of q4_1, q5_1, q4_K and q5_K in a second accumulator). A row's int8
/// activations depend on that row only, so the same invariance holds. Each weight block is decoded
/// once per group of up to 8 input rows. The int8 rounding of activations is the only difference
/// from f32 arithmetic on the de-quantized weights: at most half an activation step per element.
///
/// Float tiles of 3 weight rows × 4 input rows: per 8 values of `k` the kernel loads 7 vectors and
/// issues 12 FMAs, so it is FMA-bound when the batch is wide and bandwidth-bound (each weight read
/// once per call) when it is narrow — which is what makes n candidates cost about what one costs.
public func linear(
    _ x: UnsafePointer<Float>, rows: Int, weight: WeightMatrix, bias: UnsafePointer<Float>? = nil,
    into y: UnsafeMutablePointer<Float>, pool: ComputePool = .shared
) {
    LinearTask()(x, rows: rows, weight: weight, bias: bias, into: y, pool: pool)
}

/// `linear` as a reusable task: a caller on the per-token path keeps one and calls it, so a
/// matmul allocates nothing. Not for concurrent use.
public final class LinearTask: ParallelTask {
    private let activations = QuantizedActivations()
    private var x: UnsafePointer<Float>?
    private var rows = 0
    /// The parallel loop's length: the products' outputs together.
    private var count = 0
    /// The products of this call (one to three), kept as optionals so a call allocates nothing.
    private var first: LinearOutput?, second: LinearOutput?, third: LinearOutput?

    public init() {}

    public func callAsFunction(
        _ x: UnsafePointer<Float>, rows: Int, weight: WeightMatrix, bias: UnsafePointer<Float>? = nil,
        into y: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        self(x, rows: rows, LinearOutput(weight: weight, bias: bias, into: y), nil, nil, pool: pool)
    }

    /// Two or three products of the same input in one parallel loop — a layer's query, key and value
    /// projections, or its gate and up projections: one thread hand-off instead of one per matrix.
    /// Each output element is computed exactly as a separate call computes it.
    public func callAsFunction(
        _ x: UnsafePointer<Float>, rows: Int, _ first: LinearOutput, _ second: LinearOutput?, _ third: LinearOutput? = nil,
        pool: ComputePool
    ) {
        let k = first.weight.columns
        precondition(second.map { $0.weight.columns == k } ?? true && third.map { $0.weight.columns == k } ?? true)
        (self.x, self.rows, self.first, self.second, self.third) = (x, rows, first, second, third)
        if first.weight.element.isQuantized || second?.weight.element.isQuantized == true || third?.weight.element.isQuantized == true {
            activations.quantize(x, rows: rows, columns: k, pool: pool)
        }
        count = first.weight.rows + (second?.weight.rows ?? 0) + (third?.weight.rows ?? 0)
        pool.run(self, count: count, granularity: Self.tileRows)
        (self.x, self.first, self.second, self.third) = (nil, nil, nil, nil)
    }

    /// Outputs are split in multiples of every kernel's tile height (3 or 4 float rows, 1 or 2
    /// quantized ones), so every thread runs whole tiles.
    static let tileRows = 12

    public func run(chunk: Int, start: Int, end: Int) {
        guard let x, let first else { return }
        part(first, x, start, end)
        if let second { part(second, x, start, end) }
        if let third { part(third, x, start, end) }
    }

    /// `start..<end` is a share of the loop `0..<count`; each product gives the same share of its own
    /// outputs, so every thread gets an equal part of every matrix. (Splitting the products laid end
    /// to end gave one thread the query and the other the key and value — of another format in a
    /// q4_K_M file — and the first then waited for the second: 5–7% of a 2-thread decode step.)
    private func part(_ product: LinearOutput, _ x: UnsafePointer<Float>, _ start: Int, _ end: Int) {
        let rows = product.weight.rows
        // Packed rows come in groups of 16, which a thread takes whole.
        let tile = product.weight.element.isQuantized ? Int(SB_PACK_ROWS) : Self.tileRows
        func edge(_ share: Int) -> Int { share >= count ? rows : share * rows / count / tile * tile }
        let (lower, upper) = (edge(start), edge(end))
        if lower < upper { compute(product, x, outputs: lower..<upper) }
    }

    private func compute(_ product: LinearOutput, _ x: UnsafePointer<Float>, outputs: Range<Int>) {
        let (weight, y) = (product.weight, product.y)
        let (k, outFeatures) = (Int64(weight.columns), Int64(weight.rows))
        let (start, end) = (Int64(outputs.lowerBound), Int64(outputs.upperBound))
        switch weight.element {
        case .f32: sb_float_linear(SB_F32, weight.base, weight.rowBytes, k, start, end, x, Int64(rows), y, outFeatures)
        case .f16: sb_float_linear(SB_F16, weight.base, weight.rowBytes, k, start, end, x, Int64(rows), y, outFeatures)
        case .bf16: sb_float_linear(SB_BF16, weight.base, weight.rowBytes, k, start, end, x, Int64(rows), y, outFeatures)
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K:
            guard let packed = weight.packed else {
                preconditionFailure("a \(weight.element) matrix is multiplied from its packed rows: load it with packedForProducts()")
            }
            sb_packed_linear(
                weight.element.kernelType, packed.pointer, k, start, end, activations.levels, activations.blocks, Int64(rows), y,
                outFeatures)
        }
        if let bias = product.bias {
            for t in 0..<rows { for o in outputs { y[t * weight.rows + o] += bias[o] } }
        }
    }
}

/// One product of a `LinearTask` call: `y (rows, weight.rows) = x · weightᵀ + bias`.
public struct LinearOutput {
    public let weight: WeightMatrix
    public let bias: UnsafePointer<Float>?
    public let y: UnsafeMutablePointer<Float>

    public init(weight: WeightMatrix, bias: UnsafePointer<Float>? = nil, into y: UnsafeMutablePointer<Float>) {
        (self.weight, self.bias, self.y) = (weight, bias, y)
    }
}

/// Input rows quantized for the quantized kernels (see `linear`): scratch memory kept by a task and
/// grown only when a call brings more rows × columns than any before, so decode steps allocate
/// nothing. A prefill's rows are quantized across the pool (each row alone, so the bits do not
/// depend on the split): on one thread, before the matmul, they were about 3% of a quantized prefill.
final class QuantizedActivations: ParallelTask {
    private(set) var levels = UnsafeMutablePointer<Int8>.allocate(capacity: 0)
    private(set) var blocks = UnsafeMutablePointer<sb_activation_block>.allocate(capacity: 0)
    private var capacity = 0
    // The call being run.
    private var x: UnsafePointer<Float>?
    private var columns = 0

    deinit {
        levels.deallocate()
        blocks.deallocate()
    }

    /// Rows per piece of the parallel loop: a decode step's few rows stay on the calling thread.
    static let rowsPerPiece = 8

    func quantize(_ x: UnsafePointer<Float>, rows: Int, columns: Int, pool: ComputePool) {
        if rows * columns > capacity {
            levels.deallocate()
            blocks.deallocate()
            capacity = rows * columns
            levels = .allocate(capacity: capacity)
            blocks = .allocate(capacity: capacity / 32)
        }
        (self.x, self.columns) = (x, columns)
        pool.run(self, count: rows, granularity: Self.rowsPerPiece)
        self.x = nil
    }

    /// Quantizes rows `start..<end`.
    func run(chunk: Int, start: Int, end: Int) {
        guard let x else { return }
        let blocksPerRow = columns / 32
        for t in start..<end {
            sb_quantize_activations(x + t * columns, Int64(columns), levels + t * columns, blocks + t * blocksPerRow)
        }
    }
}

extension WeightMatrix.Element {
    /// The CKernels name of a quantized format.
    var kernelType: sb_weight_type {
        switch self {
        case .q8_0: SB_Q8_0
        case .q4_0: SB_Q4_0
        case .q4_1: SB_Q4_1
        case .q5_0: SB_Q5_0
        case .q5_1: SB_Q5_1
        case .q4_K: SB_Q4_K
        case .q5_K: SB_Q5_K
        case .q6_K: SB_Q6_K
        case .f32, .f16, .bf16: preconditionFailure("\(self) is not block-quantized")
        }
    }
}

/// Which kernels this CPU runs: "avx512vnni" (AVX-512 VNNI quantized kernels and AVX-512 float tiles),
/// "avx2" or "scalar".
public var kernelVariant: String { String(cString: sb_kernel_variant()) }
