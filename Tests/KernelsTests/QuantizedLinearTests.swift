import CKernels
import Kernels
import Testing

/// `linear` over block-quantized weights: against f64 arithmetic on the de-quantized weights (within
/// the int8 rounding of the activations), against the portable scalar kernel (bit for bit), and
/// invariant to batch and threads.
@Suite struct QuantizedLinearTests {
    static let quantized: [WeightMatrix.Element] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]
    static let out = 37, k = 512

    /// Deterministic pseudo-random values in [-1, 1) with a few larger ones, as weights have.
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { i in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let v = Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
            return i % 97 == 0 ? 4 * v : v
        }
    }

    /// `values` quantized row by row into `element`'s blocks.
    static func blocks(_ element: WeightMatrix.Element, seed: UInt64) -> [UInt8] {
        let w = values(out * k, seed: seed)
        let rowBytes = element.rowBytes(columns: k)!
        var bytes = [UInt8](repeating: 0, count: out * rowBytes)
        w.withUnsafeBufferPointer { w in
            bytes.withUnsafeMutableBytes { b in
                for o in 0..<out { element.quantize(w.baseAddress! + o * k, count: k, into: b.baseAddress! + o * rowBytes) }
            }
        }
        return bytes
    }

    static func linearRows(_ x: [Float], rows: Int, _ bytes: [UInt8], _ element: WeightMatrix.Element, threads: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * out)
        let pool = ComputePool(threads: threads)
        bytes.withUnsafeBytes { b in
            let weight = WeightMatrix(base: b.baseAddress!, element: element, rows: out, columns: k).packedForProducts()
            x.withUnsafeBufferPointer { x in
                y.withUnsafeMutableBufferPointer { y in linear(x.baseAddress!, rows: rows, weight: weight, into: y.baseAddress!, pool: pool)
                }
            }
        }
        return y
    }

    @Test(arguments: quantized)
    func matchesDequantizedWeightsWithinActivationRounding(element: WeightMatrix.Element) {
        let rows = 5
        let bytes = Self.blocks(element, seed: 11)
        let x = Self.values(rows * Self.k, seed: 12)
        let y = Self.linearRows(x, rows: rows, bytes, element, threads: 2)
        var w = [Float](repeating: 0, count: Self.out * Self.k)
        bytes.withUnsafeBytes { b in
            let weight = WeightMatrix(base: b.baseAddress!, element: element, rows: Self.out, columns: Self.k)
            w.withUnsafeMutableBufferPointer { w in for o in 0..<Self.out { weight.widenRow(o, into: w.baseAddress! + o * Self.k) } }
        }
        for t in 0..<rows {
            // Each activation moves by at most half its block's int8 step, max|x| / 127 / 2.
            let steps = (0..<(Self.k / 32)).map { b in
                Double(x[(t * Self.k + 32 * b)..<(t * Self.k + 32 * b + 32)].map(abs).max()!) / 127 / 2
            }
            for o in 0..<Self.out {
                var exact = 0.0, bound = 0.0, magnitude = 0.0
                for i in 0..<Self.k {
                    let wi = Double(w[o * Self.k + i]), xi = Double(x[t * Self.k + i])
                    exact += wi * xi
                    bound += abs(wi) * steps[i / 32]
                    magnitude += abs(wi * xi)
                }
                let error = abs(Double(y[t * Self.out + o]) - exact)
                #expect(error <= bound + 1e-5 * magnitude, "\(element) row \(t) output \(o): off by \(error), bound \(bound)")
            }
        }
    }

    /// Every tile shape: groups of 8 rows, of 4, a last group of 3 (grouped offsets with a padding
    /// lane), 2 or 1 (row by row).
    @Test(arguments: quantized, [6, 7, 9, 19])
    func vectorKernelEqualsScalarReference(element: WeightMatrix.Element, rows: Int) {
        let bytes = Self.blocks(element, seed: 13)
        let x = Self.values(rows * Self.k, seed: 14)
        let y = Self.linearRows(x, rows: rows, bytes, element, threads: 1)
        var levels = [Int8](repeating: 0, count: rows * Self.k)
        var blocks = [sb_activation_block](repeating: sb_activation_block(), count: rows * Self.k / 32)
        var reference = [Float](repeating: .nan, count: rows * Self.out)
        for t in 0..<rows {
            x.withUnsafeBufferPointer { x in
                sb_quantize_activations_portable(
                    x.baseAddress! + t * Self.k, Int64(Self.k), &levels[t * Self.k], &blocks[t * Self.k / 32])
            }
        }
        let type: sb_weight_type = [SB_Q8_0, SB_Q4_0, SB_Q4_1, SB_Q5_0, SB_Q5_1, SB_Q4_K, SB_Q5_K, SB_Q6_K][
            Self.quantized.firstIndex(of: element)!]
        bytes.withUnsafeBytes { b in
            let packed = WeightMatrix(base: b.baseAddress!, element: element, rows: Self.out, columns: Self.k).packedForProducts()
            sb_packed_linear_scalar(
                type, packed.packed!.pointer, Int64(Self.k), 0, Int64(Self.out), levels, blocks, Int64(rows), &reference, Int64(Self.out))
        }
        #expect(y.map(\.bitPattern) == reference.map(\.bitPattern), "\(element), \(rows) rows on \(kernelVariant)")
    }

    /// The vector activation quantizer writes the portable one's levels and blocks, on ordinary rows,
    /// rows of values halfway between two levels (ties go to the even level), a zero block and a block
    /// whose maximum is negative.
    @Test func vectorQuantizerEqualsPortable() {
        var x = Self.values(4 * Self.k, seed: 21)
        // Each block's maximum 127 makes its step 1, so the others (n + 0.5) lie halfway between levels.
        for i in 0..<Self.k { x[Self.k + i] = i % 32 == 0 ? 127 : Float(i % 64) - 31.5 }
        for i in 0..<32 { x[2 * Self.k + i] = 0 }
        x[2 * Self.k + 40] = -9
        var vector = ([Int8](repeating: 0, count: 4 * Self.k), [sb_activation_block](repeating: .init(), count: 4 * Self.k / 32))
        var portable = vector
        for t in 0..<4 {
            x.withUnsafeBufferPointer { x in
                let row = x.baseAddress! + t * Self.k
                sb_quantize_activations(row, Int64(Self.k), &vector.0[t * Self.k], &vector.1[t * Self.k / 32])
                sb_quantize_activations_portable(row, Int64(Self.k), &portable.0[t * Self.k], &portable.1[t * Self.k / 32])
            }
        }
        #expect(vector.0 == portable.0)
        let fields = { (b: sb_activation_block) in
            [b.d.bitPattern, b.ds.bitPattern, UInt32(UInt16(bitPattern: b.sum.0)), UInt32(UInt16(bitPattern: b.sum.1))]
        }
        #expect(vector.1.map(fields) == portable.1.map(fields))
        #expect(portable.0[Self.k..<(Self.k + 64)].contains { $0 % 2 != 0 }, "the halfway row has odd levels too")
    }

    @Test(arguments: quantized)
    func batchAndThreadInvariant(element: WeightMatrix.Element) {
        let bytes = Self.blocks(element, seed: 15)
        let batch = Self.values(9 * Self.k, seed: 16)
        let alone = (0..<9).map { t in
            Self.linearRows(Array(batch[(t * Self.k)..<((t + 1) * Self.k)]), rows: 1, bytes, element, threads: 1)
        }
        for rows in 1...9 {
            for threads in 1...3 {
                let together = Self.linearRows(Array(batch[0..<(rows * Self.k)]), rows: rows, bytes, element, threads: threads)
                for t in 0..<rows {
                    #expect(
                        Array(together[(t * Self.out)..<((t + 1) * Self.out)]) == alone[t],
                        "\(element): row \(t) of \(rows) on \(threads) threads")
                }
            }
        }
    }

    /// Two or three products in one call (mixed formats and layouts: packed q4_0 rows in groups of 16,
    /// q6_K rows and f16 rows, as a file may mix them) equal separate calls bit for bit, on any thread
    /// count.
    @Test func fusedProductsEqualSeparateCalls() {
        let rows = 3
        let x = Self.values(rows * Self.k, seed: 17)
        let q = Self.blocks(.q4_0, seed: 18), v = Self.blocks(.q6_K, seed: 19), g = Self.blocks(.f16, seed: 20)
        let separate = [
            Self.linearRows(x, rows: rows, q, .q4_0, threads: 1), Self.linearRows(x, rows: rows, v, .q6_K, threads: 1),
            Self.linearRows(x, rows: rows, g, .f16, threads: 1)
        ]
        for threads in 1...3 {
            let size = rows * Self.out
            var outputs = [Float](repeating: .nan, count: 3 * size)
            q.withUnsafeBytes { q in
                v.withUnsafeBytes { v in
                    g.withUnsafeBytes { g in
                        let matrices = [(q, WeightMatrix.Element.q4_0), (v, .q6_K), (g, .f16)].map {
                            WeightMatrix(base: $0.0.baseAddress!, element: $0.1, rows: Self.out, columns: Self.k).packedForProducts()
                        }
                        outputs.withUnsafeMutableBufferPointer { y in
                            LinearTask()(
                                x, rows: rows, LinearOutput(weight: matrices[0], into: y.baseAddress!),
                                LinearOutput(weight: matrices[1], into: y.baseAddress! + size),
                                LinearOutput(weight: matrices[2], into: y.baseAddress! + 2 * size), pool: ComputePool(threads: threads))
                        }
                    }
                }
            }
            #expect(outputs == separate.flatMap { $0 }, "\(threads) threads")
        }
    }
}
