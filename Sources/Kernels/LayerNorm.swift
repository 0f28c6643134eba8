/// LayerNorm as torch computes it in float32 (CLIP and SigLIP vision towers): per row,
/// `(x - mean) / sqrt(var + eps) * weight + bias`, with the biased variance.
/// Shapes: `x`, `y` (rows, dim); `weight`, `bias` (dim). `x` and `y` may be the same buffer.
public func layerNorm(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    rows: Int, dim: Int, eps: Float, into y: UnsafeMutablePointer<Float>
) {
    for r in 0..<rows {
        let xr = x + r * dim, yr = y + r * dim
        var sum: Float = 0
        for i in 0..<dim { sum += xr[i] }
        let mean = sum / Float(dim)
        var squares: Float = 0
        for i in 0..<dim { let d = xr[i] - mean; squares += d * d }
        let scale = 1 / (squares / Float(dim) + eps).squareRoot()
        for i in 0..<dim { yr[i] = (xr[i] - mean) * scale * weight[i] + bias[i] }
    }
}
