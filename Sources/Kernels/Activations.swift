import CKernels
import Foundation

/// SwiGLU's gating: `gate[i] = silu(gate[i]) · up[i]`, where `silu(x) = x · sigmoid(x)`, with
/// CKernels' vector exponential (libm's `expf` one element at a time was 1.7% of a batch-8 decode).
public func siluMultiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
    sb_silu_multiply(gate, up, Int64(count))
}

/// `siluMultiply` split across a pool's threads (each element is computed as the serial loop
/// computes it). A reusable task: a model keeps one, so a layer's gating allocates nothing.
public final class SiluMultiplyTask: ParallelTask {
    private var gate: UnsafeMutablePointer<Float>?
    private var up: UnsafePointer<Float>?

    public init() {}

    /// Elements per chunk: below two chunks' worth (a decode step of one sequence) the loop runs on
    /// the calling thread, where it costs less than a hand-off.
    static let granularity = 4096

    public func callAsFunction(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int, pool: ComputePool) {
        (self.gate, self.up) = (gate, up)
        pool.run(self, count: count, granularity: Self.granularity)
        (self.gate, self.up) = (nil, nil)
    }

    public func run(chunk: Int, start: Int, end: Int) {
        guard let gate, let up else { return }
        siluMultiply(gate + start, up + start, count: end - start)
    }
}

/// Numerically stable softmax in place.
public func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
    guard count > 0 else { return }
    var maximum = x[0]
    for i in 1..<count { maximum = max(maximum, x[i]) }
    let inverse = 1 / exponentialSum(x, count: count, shift: maximum, terms: x)
    for i in 0..<count { x[i] *= inverse }
}

/// `log Σ exp(x[i])`, computed stably (log-probabilities are `x[i] - logSumExp`).
public func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var maximum = -Float.infinity
    for i in 0..<count { maximum = max(maximum, x[i]) }
    guard maximum.isFinite else { return maximum }
    return maximum + logf(exponentialSum(x, count: count, shift: maximum))
}

/// `Σ exp(x[i] − shift)`, writing each term to `terms[i]` when given (it may be `x`): the
/// vocabulary-wide exponentials of sampling and log-probabilities, with CKernels' vector exponential
/// (`sb_exp_sum`: about 2 ulp, summed in a fixed order, so the result depends on `x` alone). A row
/// of 49,152 logits through libm's `expf` one at a time was about a tenth of a batch-8 decode step.
public func exponentialSum(
    _ x: UnsafePointer<Float>, count: Int, shift: Float, terms: UnsafeMutablePointer<Float>? = nil
) -> Float {
    sb_exp_sum(x, Int64(count), shift, terms)
}
