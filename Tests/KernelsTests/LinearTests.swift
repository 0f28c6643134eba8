import Kernels
import Testing

@Suite struct LinearTests {
    /// Deterministic pseudo-random values in [-1, 1).
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
    }

    func run(_ x: [Float], rows: Int, _ w: [Float], out: Int, bias: [Float]?, threads: Int) -> [Float] {
        let k = x.count / rows
        var y = [Float](repeating: .nan, count: rows * out)
        let pool = ComputePool(threads: threads)
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                y.withUnsafeMutableBufferPointer { y in
                    if let bias {
                        bias.withUnsafeBufferPointer { b in
                            linear(x.baseAddress!, rows: rows, inFeatures: k, weight: w.baseAddress!, outFeatures: out, bias: b.baseAddress!, into: y.baseAddress!, pool: pool)
                        }
                    } else {
                        linear(x.baseAddress!, rows: rows, inFeatures: k, weight: w.baseAddress!, outFeatures: out, into: y.baseAddress!, pool: pool)
                    }
                }
            }
        }
        return y
    }

    /// Every tile shape and remainder: rows and outputs not multiples of 4, k not a multiple of 8.
    @Test(arguments: [(1, 1, 1), (1, 7, 5), (3, 13, 9), (4, 8, 16), (5, 17, 33), (9, 36, 70)])
    func matchesDoublePrecisionReference(rows: Int, out: Int, k: Int) {
        let x = values(rows * k, seed: 1), w = values(out * k, seed: 2), bias = values(out, seed: 3)
        let y = run(x, rows: rows, w, out: out, bias: bias, threads: 2)
        for t in 0..<rows {
            for o in 0..<out {
                var expected = Double(bias[o])
                for i in 0..<k { expected += Double(x[t * k + i]) * Double(w[o * k + i]) }
                #expect(abs(Double(y[t * out + o]) - expected) < 1e-4, "row \(t) column \(o)")
            }
        }
    }

    /// A row's result is bit-identical whatever other rows share the call and however many threads run.
    @Test func batchAndThreadInvariant() {
        let k = 77, out = 45
        let w = values(out * k, seed: 4), batch = values(11 * k, seed: 5)
        let together = run(batch, rows: 11, w, out: out, bias: nil, threads: 2)
        for t in 0..<11 {
            let alone = run(Array(batch[(t * k)..<((t + 1) * k)]), rows: 1, w, out: out, bias: nil, threads: 1)
            #expect(Array(together[(t * out)..<((t + 1) * out)]) == alone, "row \(t)")
        }
    }
}
