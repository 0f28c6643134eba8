import Foundation

/// SwiGLU's gating: `gate[i] = silu(gate[i]) · up[i]`, where `silu(x) = x · sigmoid(x)`.
public func siluMultiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let g = gate[i]
        gate[i] = (g / (1 + expf(-g))) * up[i]
    }
}

/// Numerically stable softmax in place.
public func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
    guard count > 0 else { return }
    var maximum = x[0]
    for i in 1..<count { maximum = max(maximum, x[i]) }
    var sum: Float = 0
    for i in 0..<count { let e = expf(x[i] - maximum); x[i] = e; sum += e }
    let inverse = 1 / sum
    for i in 0..<count { x[i] *= inverse }
}

/// `log Σ exp(x[i])`, computed stably (log-probabilities are `x[i] - logSumExp`).
public func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var maximum = -Float.infinity
    for i in 0..<count { maximum = max(maximum, x[i]) }
    guard maximum.isFinite else { return maximum }
    var sum: Float = 0
    for i in 0..<count { sum += expf(x[i] - maximum) }
    return maximum + logf(sum)
}
