import Foundation

/// Rotary position embedding. In the "rotate half" layout that Hugging Face Llama/Qwen2/Mistral use,
/// dimension `i` of a head pairs with `i + headDim/2`; in the interleaved layout (the original
/// RoPE's, and llama.cpp's for llama GGUF files) dimension `2i` pairs with `2i + 1`. Pair `i` turns
/// by the same angle in both.
public struct RotaryEmbedding: Sendable {
    public enum Layout: Sendable {
        case rotateHalf, interleaved
    }

    public let headDim: Int
    public let layout: Layout
    public let scaling: Scaling
    /// (headDim / 2) inverse frequencies, after any scaling.
    public let inverseFrequencies: [Float]
    /// Multiplies cos and sin (1 except for YaRN).
    public let attentionScaling: Float

    public init(headDim: Int, base: Float, scaling: Scaling = .none, layout: Layout = .rotateHalf) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension")
        self.headDim = headDim
        self.layout = layout
        self.scaling = scaling
        // As transformers: base ** (arange(0, dim, 2).float() / dim), in float32.
        var frequencies = (0..<(headDim / 2)).map { i -> Float in
            1 / powf(base, Float(2 * i) / Float(headDim))
        }
        var attentionScaling: Float = 1
        switch scaling {
        case .none: break
        case .linear(let factor): frequencies = frequencies.map { $0 / factor }
        case .llama3(let factor, let low, let high, let originalContext):
            frequencies = frequencies.map { Self.llama3Scaled($0, factor: factor, low: low, high: high, originalContext: originalContext) }
        case .frequencyDivisors(let divisors):
            precondition(divisors.count == headDim / 2, "RoPE needs one divisor per frequency (\(headDim / 2)), not \(divisors.count)")
            frequencies = zip(frequencies, divisors).map { $0 / $1 }
        case .yarn(let factor, let originalContext, let betaFast, let betaSlow, let attentionFactor):
            frequencies = Self.yarnScaled(
                base: base, headDim: headDim, factor: factor, originalContext: originalContext, betaFast: betaFast, betaSlow: betaSlow)
            attentionScaling = attentionFactor ?? (factor <= 1 ? 1 : Float(0.1 * log(Double(factor)) + 1))
        }
        self.inverseFrequencies = frequencies
        self.attentionScaling = attentionScaling
    }

    public enum Scaling: Sendable, Equatable {
        case none
        case linear(factor: Float)
        case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalContext: Int)
        /// Inverse frequency `i` divided by `divisors[i]`: how llama.cpp stores a scaling it has
        /// computed ahead (a GGUF file's `rope_freqs.weight`, e.g. llama3's bands).
        case frequencyDivisors([Float])
        /// YaRN (transformers' `yarn`, llama.cpp's `rope.scaling.type` yarn): frequencies that turn
        /// fewer than `betaSlow` times over the original context are divided by `factor`, those
        /// turning more than `betaFast` times are kept, with a linear ramp between; cos and sin are
        /// multiplied by `attentionFactor` (by default 0.1·ln(factor) + 1).
        case yarn(factor: Float, originalContext: Int, betaFast: Float, betaSlow: Float, attentionFactor: Float?)
    }

    /// YaRN's inverse frequencies as transformers computes them (`_compute_yarn_parameters`, with
    /// `truncate`: the ramp's ends rounded outwards to whole dimensions, as ggml's
    /// `ggml_rope_yarn_corr_dims` does): the bounds in f64, the frequencies in f32.
    static func yarnScaled(base: Float, headDim: Int, factor: Float, originalContext: Int, betaFast: Float, betaSlow: Float) -> [Float] {
        func correctionDimension(_ rotations: Float) -> Double {
            Double(headDim) * log(Double(originalContext) / (Double(rotations) * 2 * Double.pi)) / (2 * log(Double(base)))
        }
        let low = max(floor(correctionDimension(betaFast)), 0)
        var high = min(ceil(correctionDimension(betaSlow)), Double(headDim - 1))
        if low == high { high += 0.001 }
        return (0..<(headDim / 2)).map { i -> Float in
            let position = powf(base, Float(2 * i) / Float(headDim))
            let extrapolation = 1 / position, interpolation = 1 / (factor * position)
            let ramp = min(max((Float(i) - Float(low)) / Float(high - low), 0), 1)
            let extrapolationFactor = 1 - ramp
            return interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor
        }
    }

    /// Llama 3.1's scaling: long wavelengths are divided by `factor`, short ones kept, and the band
    /// between is interpolated smoothly.
    static func llama3Scaled(_ frequency: Float, factor: Float, low: Float, high: Float, originalContext: Int) -> Float {
        let lowWavelength = Float(originalContext) / low
        let highWavelength = Float(originalContext) / high
        let wavelength = 2 * Float.pi / frequency
        if wavelength > lowWavelength { return frequency / factor }
        if wavelength < highWavelength { return frequency }
        let smooth = (Float(originalContext) / wavelength - low) / (high - low)
        return (1 - smooth) * frequency / factor + smooth * frequency
    }

    /// Writes cos and sin for `position` into `cos`, `sin` (headDim / 2 each).
    public func angles(position: Int, cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        for i in 0..<(headDim / 2) {
            let angle = Float(position) * inverseFrequencies[i]
            cos[i] = cosf(angle) * attentionScaling
            sin[i] = sinf(angle) * attentionScaling
        }
    }

    /// Rotates `heads` consecutive heads of `x` in place with precomputed angles.
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = headDim / 2
        // Pair i is (i, i + half) or (2i, 2i + 1).
        let (firstStride, secondOffset) = layout == .rotateHalf ? (1, half) : (2, 1)
        for h in 0..<heads {
            let head = x + h * headDim
            for i in 0..<half {
                let first = i * firstStride, second = first + secondOffset
                let a = head[first], b = head[second]
                head[first] = a * cos[i] - b * sin[i]
                head[second] = b * cos[i] + a * sin[i]
            }
        }
    }
}
