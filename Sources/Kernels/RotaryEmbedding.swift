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
    /// (headDim / 2) inverse frequencies, after any scaling.
    public let inverseFrequencies: [Float]
    /// Multiplies cos and sin (1 except for scalings such as YaRN, which are not supported).
    public let attentionScaling: Float

    public init(headDim: Int, base: Float, scaling: Scaling = .none, layout: Layout = .rotateHalf) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension")
        self.headDim = headDim
        self.layout = layout
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
