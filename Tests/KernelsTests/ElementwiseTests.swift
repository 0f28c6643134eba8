import Foundation
import Kernels
import Testing

@Suite struct ElementwiseTests {
    @Test func rmsNormMatchesDefinition() {
        let x: [Float] = [1, -2, 3, 0.5, 4, -1, 2, 2, 7]
        let weight: [Float] = [0.5, 1, 2, 1, 1, 1, 1, 1, 3]
        var y = [Float](repeating: 0, count: 9)
        rmsNorm(x, weight: weight, rows: 1, dim: 9, eps: 1e-6, into: &y)
        let rms = (x.map { Double($0 * $0) }.reduce(0, +) / 9 + 1e-6).squareRoot()
        for i in 0..<9 { #expect(abs(Double(y[i]) - Double(weight[i]) * Double(x[i]) / rms) < 1e-6) }
    }

    @Test func softmaxIsStableAndNormalised() {
        var x: [Float] = [1000, 1001, 999]
        softmax(&x, count: 3)
        #expect(abs(x.reduce(0, +) - 1) < 1e-6)
        #expect(abs(x[1] - Float(exp(1.0) / (exp(0.0) + exp(1.0) + exp(-1.0)))) < 1e-6)
        #expect(abs(logSumExp([1000, 1000], count: 2) - (1000 + logf(2))) < 1e-3)
    }

    /// HF pairs dimension i with i + headDim/2 ("rotate half"), not with its neighbour.
    @Test func ropeRotatesHalves() {
        let rope = RotaryEmbedding(headDim: 4, base: 10000)
        var cos = [Float](repeating: 0, count: 2), sin = [Float](repeating: 0, count: 2)
        rope.angles(position: 3, cos: &cos, sin: &sin)
        var x: [Float] = [1, 0, 0, 0]
        rope.apply(&x, heads: 1, cos: cos, sin: sin)
        #expect(abs(x[0] - cosf(3)) < 1e-6 && abs(x[2] - sinf(3)) < 1e-6 && x[1] == 0 && x[3] == 0)
    }

    /// Llama 3.1 scaling: high frequencies unchanged, low ones divided by the factor.
    @Test func llama3ScalingBands() {
        let plain = RotaryEmbedding(headDim: 64, base: 500000)
        let scaled = RotaryEmbedding(
            headDim: 64, base: 500000, scaling: .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 8192))
        #expect(scaled.inverseFrequencies[0] == plain.inverseFrequencies[0])
        #expect(abs(scaled.inverseFrequencies[31] - plain.inverseFrequencies[31] / 8) < 1e-12)
        let middle = (0..<32).filter {
            scaled.inverseFrequencies[$0] != plain.inverseFrequencies[$0]
                && abs(scaled.inverseFrequencies[$0] - plain.inverseFrequencies[$0] / 8) > 1e-12
        }
        #expect(!middle.isEmpty, "some frequencies are interpolated")
    }
}
