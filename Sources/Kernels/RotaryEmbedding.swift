import Foundation

/// Rotary position embedding in the "rotate half" layout that Hugging Face Llama/Qwen2/Mistral use:
/// dimension `i` of a head pairs with `i + headDim/2` (not with its neighbour, as the original
/// interleaved RoPE does).
public struct RotaryEmbedding: Sendable {
    public let headDim: Int
    /// (headDim / 2) inverse frequencies, after any scaling.
    public let inverseFrequencies: [Float]
    /// Multiplies cos and sin (1 except for scalings such as YaRN, which are not supported).
    public let attentionScaling: Float

    public init(headDim: Int, base: Float, scaling: Scaling = .none) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension")
        self.headDim = headDim
        // As transformers: base ** (arange(0, dim, 2).float() / dim), in float32.
        var frequencies = (0..<(headDim / 2)).map { i -> Float in
            1 / powf(base, Float(2 * i) / Float(headDim))
        }
        switch scaling {
        case .none: break
        case .linear(let factor): frequencies = frequencies.map { $0 / factor }
        case .llama3(let factor, let low, let high, let originalContext):
            frequencies = frequencies.map { Self.llama3Scaled($0, factor: factor, low: low, high: high, originalContext: originalContext) }
        }
        self.inverseFrequencies = frequencies
        self.attentionScaling = 1
    }

    public enum Scaling: Sendable, Equatable {
        case none
        case linear(factor: Float)
        case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalContext: Int)
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
        for h in 0..<heads {
            let head = x + h * headDim
            for i in 0..<half {
                let a = head[i], b = head[i + half]
                head[i] = a * cos[i] - b * sin[i]
                head[i + half] = b * cos[i] + a * sin[i]
            }
        }
    }
}
