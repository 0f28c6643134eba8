import CKernels
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
        w.withUnsafeBufferPointer { w in
            run(x, rows: rows, WeightMatrix(f32: w.baseAddress!, rows: out, columns: x.count / rows), bias: bias, threads: threads)
        }
    }

    func run(_ x: [Float], rows: Int, _ weight: WeightMatrix, bias: [Float]?, threads: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * weight.rows)
        let pool = ComputePool(threads: threads)
        let b = bias ?? []
        x.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { b in
                y.withUnsafeMutableBufferPointer { y in
                    linear(
                        x.baseAddress!, rows: rows, weight: weight, bias: bias == nil ? nil : b.baseAddress!, into: y.baseAddress!,
                        pool: pool)
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

    /// A prefill-sized call (the blocked path: more than two blocks of 64 rows, an odd last tile,
    /// outputs not a multiple of the tile height) gives every row the bits it gets alone, on one
    /// thread, and the portable kernel's bits, for every float format.
    @Test(arguments: [WeightMatrix.Element.f32, .f16, .bf16])
    func prefillBlocksEqualRowsAlone(element: WeightMatrix.Element) {
        let rows = 131, out = 37, k = 45
        let (x, stored, reference) = portableCase(element, rows: rows, out: out, k: k, seed: 11)
        stored.withUnsafeBytes { w in
            let weight = WeightMatrix(base: w.baseAddress!, element: element, rows: out, columns: k)
            let together = run(x, rows: rows, weight, bias: nil, threads: 2)
            #expect(together.map(\.bitPattern) == reference.map(\.bitPattern))
            for t in [0, 63, 64, 127, 130] {
                let alone = run(Array(x[(t * k)..<((t + 1) * k)]), rows: 1, weight, bias: nil, threads: 1)
                #expect(Array(together[(t * out)..<((t + 1) * out)]).map(\.bitPattern) == alone.map(\.bitPattern), "row \(t)")
            }
        }
    }

    /// f16 and bf16 weights widened in the kernel give exactly the f32 result on the widened values.
    @Test func halfPrecisionWeightsEqualWidenedF32() {
        let rows = 5, out = 13, k = 37
        let x = values(rows * k, seed: 6)
        let halves = values(out * k, seed: 7).map { Float16($0) }
        let brains = values(out * k, seed: 8).map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
        halves.withUnsafeBufferPointer { h in
            let stored = WeightMatrix(base: UnsafeRawPointer(h.baseAddress!), element: .f16, rows: out, columns: k)
            #expect(
                run(x, rows: rows, stored, bias: nil, threads: 2)
                    == run(x, rows: rows, halves.map { Float($0) }, out: out, bias: nil, threads: 2))
            var row = [Float](repeating: 0, count: k)
            stored.widenRow(3, into: &row)
            #expect(row == halves[(3 * k)..<(4 * k)].map { Float($0) })
        }
        brains.withUnsafeBufferPointer { b in
            let stored = WeightMatrix(base: UnsafeRawPointer(b.baseAddress!), element: .bf16, rows: out, columns: k)
            let widened = brains.map { Float(bitPattern: UInt32($0) << 16) }
            #expect(run(x, rows: rows, stored, bias: nil, threads: 2) == run(x, rows: rows, widened, out: out, bias: nil, threads: 2))
        }
    }

    /// The vector kernels give the portable scalar kernel's bits, for every format, tile shape and tail:
    /// input rows 1–3 past a multiple of 4 and outputs 0–2 past a multiple of 3 (AVX2's many-row
    /// tiles), rows 0–7 past a multiple of 8 and outputs 0–5 past a multiple of 6 (AVX-512's), outputs
    /// not a multiple of 4 or 8 (the one-row tiles).
    @Test(
        arguments: [WeightMatrix.Element.f32, .f16, .bf16],
        [(1, 11), (2, 12), (7, 13), (9, 11), (10, 12), (11, 13), (8, 14), (16, 17), (23, 6), (1, 21), (5, 9)])
    func vectorKernelEqualsPortableReference(element: WeightMatrix.Element, shape: (rows: Int, out: Int)) {
        let k = 45
        let (x, stored, reference) = portableCase(element, rows: shape.rows, out: shape.out, k: k, seed: 9)
        stored.withUnsafeBytes { w in
            let weight = WeightMatrix(base: w.baseAddress!, element: element, rows: shape.out, columns: k)
            #expect(
                run(x, rows: shape.rows, weight, bias: nil, threads: 2).map(\.bitPattern) == reference.map(\.bitPattern),
                "\(shape.rows) rows × \(shape.out) outputs")
        }
    }

    /// Inputs (seed), weights stored as `element` (seed + 1) and the portable scalar kernel's output on them.
    private func portableCase(
        _ element: WeightMatrix.Element, rows: Int, out: Int, k: Int, seed: UInt64
    ) -> (x: [Float], stored: [UInt8], reference: [Float]) {
        let x = values(rows * k, seed: seed)
        var stored = [UInt8](repeating: 0, count: out * element.rowBytes(columns: k)!)
        values(out * k, seed: seed + 1).withUnsafeBufferPointer { element.quantize($0.baseAddress!, count: out * k, into: &stored) }
        var reference = [Float](repeating: .nan, count: rows * out)
        let type: sb_float_type = element == .f32 ? SB_F32 : element == .f16 ? SB_F16 : SB_BF16
        sb_float_linear_portable(
            type, stored, element.rowBytes(columns: k)!, Int64(k), 0, Int64(out), x, Int64(rows), &reference, Int64(out))
        return (x, stored, reference)
    }
}
