import CKernels

/// `y[t, o] = bias[o] + Σ_k x[t, k] · w[o, k]` — the one hot function of the engine.
///
/// Shapes: `x` (rows, inFeatures) row-major f32; `weight` (outFeatures, inFeatures) row-major, exactly
/// as a Hugging Face checkpoint stores a `Linear` weight (so mapped weights are used in place, never
/// packed or copied), in f32, f16 or bf16; `y` (rows, outFeatures).
///
/// **Batch-invariant by construction.** Every output element is one SIMD8 accumulator that walks
/// `k` in the same order with fused multiply-adds, then is reduced in a fixed order. Which other rows
/// share the call, how rows are tiled and how output columns are split across threads change only
/// *when* an element is computed, never the arithmetic that computes it. So a sequence's logits do
/// not depend on what else is in its batch, and a prefix prefilled in one call equals the same
/// prefix prefilled in chunks (invariant 1 of DESIGN.md).
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
        switch weight.element {
        case .f32: linearColumns(Float.self, x, rows: rows, weight: weight, bias: bias, y: y, columns: start..<end)
        case .f16: linearColumns(Float16.self, x, rows: rows, weight: weight, bias: bias, y: y, columns: start..<end)
        case .bf16: linearColumns(BFloat16Bits.self, x, rows: rows, weight: weight, bias: bias, y: y, columns: start..<end)
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K:
            sb_quantized_linear(
                weight.element.kernelType, weight.base, weight.rowBytes, Int64(weight.columns), Int64(start), Int64(end),
                activations.levels, activations.blocks, Int64(rows), y, Int64(weight.rows))
            if let bias {
                for t in 0..<rows { for o in start..<end { y[t * weight.rows + o] += bias[o] } }
            }
        }
    }
}

private func linearColumns<W: WeightElement>(
    _: W.Type, _ x: UnsafePointer<Float>, rows: Int, weight: WeightMatrix, bias: UnsafePointer<Float>?,
    y: UnsafeMutablePointer<Float>, columns: Range<Int>
) {
    let k = weight.columns, outFeatures = weight.rows
    let rowBytes = weight.rowBytes
    let w = weight.base
    let kVector = k & ~7
    var o = columns.lowerBound
    while o < columns.upperBound {
        let oCount = min(4, columns.upperBound - o)
        var t = 0
        while t < rows {
            let tCount = min(4, rows - t)
            if oCount == 4 && tCount == 4 {
                tile4x4(
                    W.self, x + t * k, w + o * rowBytes, k: k, kVector: kVector, rowBytes: rowBytes,
                    y: y + t * outFeatures + o, ldy: outFeatures)
            } else if oCount == 4 {
                for dt in 0..<tCount {
                    tile4x1(
                        W.self, x + (t + dt) * k, w + o * rowBytes, k: k, kVector: kVector, rowBytes: rowBytes,
                        y: y + (t + dt) * outFeatures + o)
                }
            } else {
                for dt in 0..<tCount {
                    for dout in 0..<oCount {
                        let xr = x + (t + dt) * k, wr = w + (o + dout) * rowBytes
                        var acc = SIMD8<Float>()
                        var kk = 0
                        while kk < kVector { acc.addProduct(load8(xr + kk), W.load8(wr, kk)); kk += 8 }
                        y[(t + dt) * outFeatures + o + dout] = finish(W.self, acc, xr, wr, from: kVector, to: k)
                    }
                }
            }
            t += 4
        }
        if let bias {
            for t in 0..<rows { for dout in 0..<oCount { y[t * outFeatures + o + dout] += bias[o + dout] } }
        }
        o += 4
    }
}

/// The fixed-order reduction shared by every tile shape (see `linear`'s invariance note).
@inline(__always)
private func finish<W: WeightElement>(
    _: W.Type, _ acc: SIMD8<Float>, _ x: UnsafePointer<Float>, _ w: UnsafeRawPointer,
    from k0: Int, to k: Int
) -> Float {
    let lo = acc.lowHalf + acc.highHalf
    let pair = lo.lowHalf + lo.highHalf
    var sum = pair[0] + pair[1]
    var kk = k0
    while kk < k { sum = (x[kk] * W.load1(w, kk)) + sum; kk += 1 }
    return sum
}

@inline(__always)
private func tile4x4<W: WeightElement>(
    _: W.Type, _ x: UnsafePointer<Float>, _ w: UnsafeRawPointer, k: Int, kVector: Int,
    rowBytes: Int, y: UnsafeMutablePointer<Float>, ldy: Int
) {
    let x0 = x, x1 = x + k, x2 = x + 2 * k, x3 = x + 3 * k
    let w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes
    var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>(), a03 = SIMD8<Float>()
    var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>(), a13 = SIMD8<Float>()
    var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a22 = SIMD8<Float>(), a23 = SIMD8<Float>()
    var a30 = SIMD8<Float>(), a31 = SIMD8<Float>(), a32 = SIMD8<Float>(), a33 = SIMD8<Float>()
    var kk = 0
    while kk < kVector {
        let v0 = W.load8(w0, kk), v1 = W.load8(w1, kk), v2 = W.load8(w2, kk), v3 = W.load8(w3, kk)
        let u0 = load8(x0 + kk)
        a00.addProduct(u0, v0); a01.addProduct(u0, v1); a02.addProduct(u0, v2); a03.addProduct(u0, v3)
        let u1 = load8(x1 + kk)
        a10.addProduct(u1, v0); a11.addProduct(u1, v1); a12.addProduct(u1, v2); a13.addProduct(u1, v3)
        let u2 = load8(x2 + kk)
        a20.addProduct(u2, v0); a21.addProduct(u2, v1); a22.addProduct(u2, v2); a23.addProduct(u2, v3)
        let u3 = load8(x3 + kk)
        a30.addProduct(u3, v0); a31.addProduct(u3, v1); a32.addProduct(u3, v2); a33.addProduct(u3, v3)
        kk += 8
    }
    let y1 = y + ldy, y2 = y + 2 * ldy, y3 = y + 3 * ldy
    y[0] = finish(W.self, a00, x0, w0, from: kVector, to: k); y[1] = finish(W.self, a01, x0, w1, from: kVector, to: k)
    y[2] = finish(W.self, a02, x0, w2, from: kVector, to: k); y[3] = finish(W.self, a03, x0, w3, from: kVector, to: k)
    y1[0] = finish(W.self, a10, x1, w0, from: kVector, to: k); y1[1] = finish(W.self, a11, x1, w1, from: kVector, to: k)
    y1[2] = finish(W.self, a12, x1, w2, from: kVector, to: k); y1[3] = finish(W.self, a13, x1, w3, from: kVector, to: k)
    y2[0] = finish(W.self, a20, x2, w0, from: kVector, to: k); y2[1] = finish(W.self, a21, x2, w1, from: kVector, to: k)
    y2[2] = finish(W.self, a22, x2, w2, from: kVector, to: k); y2[3] = finish(W.self, a23, x2, w3, from: kVector, to: k)
    y3[0] = finish(W.self, a30, x3, w0, from: kVector, to: k); y3[1] = finish(W.self, a31, x3, w1, from: kVector, to: k)
    y3[2] = finish(W.self, a32, x3, w2, from: kVector, to: k); y3[3] = finish(W.self, a33, x3, w3, from: kVector, to: k)
}

/// Four weight rows against one input row: four independent FMA chains hide the FMA latency
/// that a single accumulator would expose in single-sequence decode.
@inline(__always)
private func tile4x1<W: WeightElement>(
    _: W.Type, _ x: UnsafePointer<Float>, _ w: UnsafeRawPointer, k: Int, kVector: Int,
    rowBytes: Int, y: UnsafeMutablePointer<Float>
) {
    let w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var kk = 0
    while kk < kVector {
        let u = load8(x + kk)
        a0.addProduct(u, W.load8(w0, kk)); a1.addProduct(u, W.load8(w1, kk))
        a2.addProduct(u, W.load8(w2, kk)); a3.addProduct(u, W.load8(w3, kk))
        kk += 8
    }
    y[0] = finish(W.self, a0, x, w0, from: kVector, to: k); y[1] = finish(W.self, a1, x, w1, from: kVector, to: k)
    y[2] = finish(W.self, a2, x, w2, from: kVector, to: k); y[3] = finish(W.self, a3, x, w3, from: kVector, to: k)
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
