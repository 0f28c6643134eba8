import Foundation

/// RMSNorm as Llama/Qwen2 compute it in float32: `x / sqrt(mean(x²) + eps) * weight`, per row.
/// Shapes: `x`, `y` (rows, dim); `weight` (dim). `x` and `y` may be the same buffer.
public func rmsNorm(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, dim: Int,
    eps: Float, into y: UnsafeMutablePointer<Float>
) {
    for r in 0..<rows {
        let xr = x + r * dim, yr = y + r * dim
        let meanSquare = dot(xr, xr, count: dim) / Float(dim)
        let scale = 1 / (meanSquare + eps).squareRoot()
        for i in 0..<dim { yr[i] = weight[i] * (xr[i] * scale) }
    }
}
