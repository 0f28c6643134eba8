import CKernels
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

    /// The vector exponential sum equals its portable form bit for bit (terms and sum, tails of 0–7
    /// values past a multiple of 8), each term is within 2 ulp of e^x on [-87.3, 88], values below
    /// -87.3 (and -inf) give 0, and NaN stays NaN.
    @Test func exponentialSumEqualsPortableAndExp() {
        var state: UInt64 = 7
        let values: [Float] =
            (0..<1003).map { i in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23) * 88 - (i % 5 == 0 ? 0 : 44)
            } + [-87.3, -87.4, -.infinity, 0, -1e-8, 87.9]
        for count in [values.count, values.count - 1, 8, 7, 3, 0] {
            var vector = [Float](repeating: .nan, count: count), portable = vector
            let sums = values.withUnsafeBufferPointer { x in
                (sb_exp_sum(x.baseAddress!, Int64(count), 1.5, &vector), sb_exp_sum_portable(x.baseAddress!, Int64(count), 1.5, &portable))
            }
            #expect(sums.0.bitPattern == sums.1.bitPattern, "\(count) values")
            #expect(vector.map(\.bitPattern) == portable.map(\.bitPattern), "\(count) values")
        }
        var terms = [Float](repeating: 0, count: values.count)
        _ = exponentialSum(values, count: values.count, shift: 0, terms: &terms)
        for (x, e) in zip(values, terms) {
            if x < -87.33654 {
                #expect(e == 0, "e^\(x)")
            } else {
                let exact = Foundation.exp(Double(x))
                #expect(abs(Double(e) - exact) <= 2 * Double(Float(exact).ulp), "e^\(x): \(e) against \(exact)")
            }
        }
        var nan = [Float](repeating: 0, count: 9)
        #expect(exponentialSum([Float](repeating: .nan, count: 9), count: 9, shift: 0, terms: &nan).isNaN && nan.allSatisfy(\.isNaN))
    }

    /// SwiGLU's gating: the vector form equals the portable one bit for bit (tails of 1–7 elements
    /// included) and both are within a few ulp of silu(g)·u computed in double precision; past the
    /// exponential's clamp (g < -88, where e^(-g) stays e^88) silu(g) is g·e^-88, under 1e-35.
    @Test func siluMultiplyEqualsPortableAndDefinition() {
        var state: UInt64 = 11
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        let gates = (0..<517).map { _ in next() * 24 - 12 } + [-100, -88.5, -87.4, 0, -0, 87.4, 88.5, 100]
        let ups = gates.map { _ in next() * 4 - 2 }
        for count in [gates.count, gates.count - 3, 8, 5, 0] {
            var vector = Array(gates[..<count]), portable = vector
            sb_silu_multiply(&vector, ups, Int64(count))
            sb_silu_multiply_portable(&portable, ups, Int64(count))
            #expect(vector.map(\.bitPattern) == portable.map(\.bitPattern), "\(count) elements")
        }
        var gated = gates
        siluMultiply(&gated, ups, count: gates.count)
        for (i, (g, u)) in zip(gates, ups).enumerated() {
            let exact = Double(g) / (1 + Foundation.exp(-Double(g))) * Double(u)
            #expect(abs(Double(gated[i]) - exact) <= 4 * Double(Float(exact).ulp) + 1e-35, "silu(\(g))·\(u): \(gated[i]) against \(exact)")
        }
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
