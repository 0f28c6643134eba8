import CKernels

/// `y[t, o] = bias[o] + Σ_k x[t, k] · w[o, k]` — the one hot function of the engine.
///
/// Shapes: `x` (rows, inFeatures) row-major f32; `weight` (outFeatures, inFeatures) row-major, exactly
/// as a Hugging Face checkpoint stores a `Linear` weight (so mapped weights are used in place, never
/// packed or copied), in f32, f16 or bf16; `y` (rows, outFeatures).
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
/// quantized dot products), then each output is an 8-lane f32 accumulator over the row's blocks in
/// order — integer dot product of a weight block with an activation block (exact), times the two
/// blocks' scales — plus a scalar for the formats' offsets, reduced in a fixed order. A row's int8
/// activations depend on that row only, so the same invariance holds. Each weight block is decoded
/// once per call for up to 4 input rows. The int8 rounding of activations is the only difference from
/// f32 arithmetic on the de-quantized weights: at most half an activation step per element.
///
/// Tiles of 4 weight rows × 4 input rows: per 8 values of `k` the kernel loads 8 vectors and issues
/// 16 FMAs, so it is FMA-bound when the batch is wide and bandwidth-bound (each weight read once
/// per call) when it is narrow — which is what makes n candidates cost about what one costs.
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
    private var weight: WeightMatrix?
    private var bias: UnsafePointer<Float>?
    private var y: UnsafeMutablePointer<Float>?

    public init() {}

    public func callAsFunction(
        _ x: UnsafePointer<Float>, rows: Int, weight: WeightMatrix, bias: UnsafePointer<Float>? = nil,
        into y: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        (self.x, self.rows, self.weight, self.bias, self.y) = (x, rows, weight, bias, y)
        if weight.element.isQuantized { activations.quantize(x, rows: rows, columns: weight.columns) }
        // Columns are split in multiples of the tile height so every thread runs whole tiles.
        pool.run(self, count: weight.rows, granularity: 16)
        (self.x, self.weight, self.bias, self.y) = (nil, nil, nil, nil)
    }

    public func run(chunk: Int, start: Int, end: Int) {
        guard let x, let weight, let y else { return }
        let (k, outFeatures) = (Int64(weight.columns), Int64(weight.rows))
        switch weight.element {
        case .f32: sb_float_linear(SB_F32, weight.base, weight.rowBytes, k, Int64(start), Int64(end), x, Int64(rows), y, outFeatures)
        case .f16: sb_float_linear(SB_F16, weight.base, weight.rowBytes, k, Int64(start), Int64(end), x, Int64(rows), y, outFeatures)
        case .bf16: sb_float_linear(SB_BF16, weight.base, weight.rowBytes, k, Int64(start), Int64(end), x, Int64(rows), y, outFeatures)
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K:
            sb_quantized_linear(
                weight.element.kernelType, weight.base, weight.rowBytes, k, Int64(start), Int64(end), activations.levels,
                activations.blocks, Int64(rows), y, outFeatures)
        }
        if let bias {
            for t in 0..<rows { for o in start..<end { y[t * weight.rows + o] += bias[o] } }
        }
    }
}

/// Input rows quantized for the quantized kernels (see `linear`): scratch memory kept by a task and
/// grown only when a call brings more rows × columns than any before, so decode steps allocate nothing.
final class QuantizedActivations {
    private(set) var levels = UnsafeMutablePointer<Int8>.allocate(capacity: 0)
    private(set) var blocks = UnsafeMutablePointer<sb_activation_block>.allocate(capacity: 0)
    private var capacity = 0

    deinit {
        levels.deallocate()
        blocks.deallocate()
    }

    func quantize(_ x: UnsafePointer<Float>, rows: Int, columns: Int) {
        if rows * columns > capacity {
            levels.deallocate()
            blocks.deallocate()
            capacity = rows * columns
            levels = .allocate(capacity: capacity)
            blocks = .allocate(capacity: capacity / 32)
        }
        for t in 0..<rows {
            sb_quantize_activations(x + t * columns, Int64(columns), levels + t * columns, blocks + t * (columns / 32))
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

/// Which quantized kernels this CPU runs: "avx512vnni", "avx2" or "scalar".
public var quantizedKernelVariant: String { String(cString: sb_kernel_variant()) }
