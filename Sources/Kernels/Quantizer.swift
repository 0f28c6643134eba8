/// f32 → every weight format: what a quantizer writes into a GGUF file. Each follows ggml's reference
/// quantizer (`quantize_row_*_ref` in ggml-quants.c, what llama-quantize runs without an importance
/// matrix) step for step, in f32 arithmetic without fused multiply-adds, so its bytes equal llama.cpp's.
extension WeightMatrix.Element {
    /// Encodes `count` values from `x` (a whole number of blocks) into `out`, which holds
    /// `rowBytes(columns: count)` bytes.
    public func quantize(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        precondition(count % blockSize == 0, "\(self) encodes whole blocks of \(blockSize) values; \(count) is not")
        switch self {
        case .f32:
            out.copyMemory(from: x, byteCount: count * 4)
        case .f16:
            for i in 0..<count { out.storeBytes(of: Float16(x[i]).bitPattern, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<count { out.storeBytes(of: bf16Bits(x[i]), toByteOffset: 2 * i, as: UInt16.self) }
        default:
            for b in 0..<(count / blockSize) {
                let source = x + b * blockSize, block = out + b * blockBytes
                switch self {
                case .q8_0: Quantizer.q8_0(source, block)
                case .q4_0, .q5_0: Quantizer.symmetric(source, block, bits: self == .q4_0 ? 4 : 5)
                case .q4_1, .q5_1: Quantizer.offset(source, block, bits: self == .q4_1 ? 4 : 5)
                case .q4_K, .q5_K: Quantizer.kWithMins(source, block, bits: self == .q4_K ? 4 : 5)
                case .q6_K: Quantizer.q6_K(source, block)
                case .f32, .f16, .bf16: break
                }
            }
        }
    }
}

/// f32 → bf16 as ggml rounds it (to nearest even; NaN kept quiet).
func bf16Bits(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    if bits & 0x7fff_ffff > 0x7f80_0000 { return UInt16((bits >> 16) | 64) }
    return UInt16(truncatingIfNeeded: (UInt64(bits) + 0x7fff + UInt64((bits >> 16) & 1)) >> 16)
}

private enum Quantizer {
    static func storeHalf(_ value: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: Float16(value).bitPattern, toByteOffset: offset, as: UInt16.self)
    }

    /// ggml's `nearest_int`: round half to even (exact for |x| < 2²²).
    @inline(__always) static func nearest(_ x: Float) -> Int { Int(x.rounded(.toNearestOrEven)) }

    static func q8_0(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(d, block, 0)
        for j in 0..<32 { block.storeBytes(of: Int8((x[j] * id).rounded()), toByteOffset: 2 + j, as: Int8.self) }
    }

    /// q4_0 / q5_0: `d` maps the value of largest magnitude to −8 (−16).
    static func symmetric(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer, bits: Int) {
        var amax: Float = 0, extreme: Float = 0
        for j in 0..<32 where amax < abs(x[j]) { (amax, extreme) = (abs(x[j]), x[j]) }
        let levels = Float(1 << (bits - 1))
        let d = extreme / -levels
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(d, block, 0)
        let top = (1 << bits) - 1
        pack(block, bits: bits, headerBytes: 2) { j in min(top, Int(x[j] * id + (levels + 0.5))) }
    }

    /// q4_1 / q5_1: `d` and `m` map the block's range onto 0…15 (0…31).
    static func offset(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer, bits: Int) {
        var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
        for j in 0..<32 {
            if x[j] < lo { lo = x[j] }
            if x[j] > hi { hi = x[j] }
        }
        let top = (1 << bits) - 1
        let d = (hi - lo) / Float(top)
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(d, block, 0)
        storeHalf(lo, block, 2)
        pack(block, bits: bits, headerBytes: 4) { j in min(top, Int((x[j] - lo) * id + 0.5)) }
    }

    /// Writes 32 levels as nibbles (element j low, j + 16 high) after `headerBytes`, with bit 4 of
    /// each in a 32-bit mask first when `bits` is 5.
    static func pack(_ block: UnsafeMutableRawPointer, bits: Int, headerBytes: Int, _ level: (Int) -> Int) {
        var qh: UInt32 = 0
        let qs = block + headerBytes + (bits == 5 ? 4 : 0)
        for j in 0..<16 {
            let low = level(j), high = level(j + 16)
            qh |= UInt32((low >> 4) & 1) << UInt32(j) | UInt32((high >> 4) & 1) << UInt32(j + 16)
            qs.storeBytes(of: UInt8(low & 0xF) | UInt8(high & 0xF) << 4, toByteOffset: j, as: UInt8.self)
        }
        if bits == 5 { block.storeBytes(of: qh, toByteOffset: headerBytes, as: UInt32.self) }
    }

    /// q4_K / q5_K: per sub-block of 32 a scale and min fitted by weighted least squares over a grid
    /// of candidate scales (ggml's `make_qkx2_quants`), then both quantized to 6 bits against the
    /// super-block's largest, and the levels recomputed from the rounded scales.
    static func kWithMins(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer, bits: Int) {
        let top = (1 << bits) - 1
        var levels = [UInt8](repeating: 0, count: 256)
        var scales = [Float](repeating: 0, count: 8), mins = [Float](repeating: 0, count: 8)
        var weights = [Float](repeating: 0, count: 32)
        var maxScale: Float = 0, maxMin: Float = 0
        for j in 0..<8 {
            let sub = x + 32 * j
            var sumSquares: Float = 0
            for l in 0..<32 { sumSquares += sub[l] * sub[l] }
            let average = (sumSquares / 32).squareRoot()
            for l in 0..<32 { weights[l] = average + abs(sub[l]) }
            let (scale, offset) = levels.withUnsafeMutableBufferPointer { levels in
                fitScaleAndMin(
                    sub, weights, top: top, into: levels.baseAddress! + 32 * j, rmin: bits == 4 ? -1 : -0.5, rdelta: 0.1,
                    steps: bits == 4 ? 20 : 15)
            }
            scales[j] = scale
            mins[j] = offset
            if scale > maxScale { maxScale = scale }
            if offset > maxMin { maxMin = offset }
        }
        let inverseScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let inverseMin: Float = maxMin > 0 ? 63 / maxMin : 0
        let packed = (block + 4).assumingMemoryBound(to: UInt8.self)
        packed.initialize(repeating: 0, count: 12)
        for j in 0..<8 {
            let ls = min(63, UInt8(truncatingIfNeeded: nearest(inverseScale * scales[j])))
            let lm = min(63, UInt8(truncatingIfNeeded: nearest(inverseMin * mins[j])))
            if j < 4 {
                packed[j] = ls
                packed[j + 4] = lm
            } else {
                packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                packed[j - 4] |= (ls >> 4) << 6
                packed[j] |= (lm >> 4) << 6
            }
        }
        storeHalf(maxScale / 63, block, 0)
        storeHalf(maxMin / 63, block, 2)
        let d = QuantizedBlocks.half(block, 0), dmin = QuantizedBlocks.half(block, 2)
        for j in 0..<8 {
            let (sc, m) = QuantizedBlocks.scaleAndMin(block + 4, j)
            let scale = d * Float(sc)
            if scale == 0 { continue }
            let offset = dmin * Float(m)
            for l in 0..<32 { levels[32 * j + l] = UInt8(max(0, min(top, nearest((x[32 * j + l] + offset) / scale)))) }
        }
        let qs = (block + (bits == 5 ? 48 : 16)).assumingMemoryBound(to: UInt8.self)
        let qh = (block + 16).assumingMemoryBound(to: UInt8.self)
        if bits == 5 { qh.initialize(repeating: 0, count: 32) }
        for pair in 0..<4 {
            for l in 0..<32 {
                let low = levels[64 * pair + l], high = levels[64 * pair + 32 + l]
                qs[32 * pair + l] = (low & 0xF) | (high & 0xF) << 4
                if bits == 5 { qh[l] |= (low >> 4) << UInt8(2 * pair) | (high >> 4) << UInt8(2 * pair + 1) }
            }
        }
    }

    /// ggml's `make_qkx2_quants` for 32 values: levels `L` in 0…top and (scale, min) minimizing the
    /// weighted squared error of `scale·L − min`, trying `steps + 1` scales around the range's.
    /// Returns the scale and the (positive) min subtracted.
    static func fitScaleAndMin(
        _ x: UnsafePointer<Float>, _ weights: [Float], top: Int, into levels: UnsafeMutablePointer<UInt8>, rmin: Float, rdelta: Float,
        steps: Int
    ) -> (Float, Float) {
        let n = 32, nmax = Float(top)
        var lo = x[0], hi = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < lo { lo = x[i] }
            if x[i] > hi { hi = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if lo > 0 { lo = 0 }
        if hi == lo {
            for i in 0..<n { levels[i] = 0 }
            return (0, -lo)
        }
        var iscale = nmax / (hi - lo)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = max(0, min(top, nearest(iscale * (x[i] - lo))))
            levels[i] = UInt8(l)
            let diff = scale * Float(l) + lo - x[i]
            bestError += weights[i] * (diff * diff)
        }
        var trial = [UInt8](repeating: 0, count: n)
        for step in 0...steps {
            iscale = (rmin + rdelta * Float(step) + nmax) / (hi - lo)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = max(0, min(top, nearest(iscale * (x[i] - lo))))
                trial[i] = UInt8(l)
                let w = weights[i], fl = Float(l)
                sumL += w * fl
                sumL2 += w * fl * fl
                sumXL += w * fl * x[i]
            }
            let determinant = sumW * sumL2 - sumL * sumL
            if determinant > 0 {
                var thisScale = (sumW * sumXL - sumX * sumL) / determinant
                var thisMin = (sumL2 * sumX - sumL * sumXL) / determinant
                if thisMin > 0 {
                    thisMin = 0
                    thisScale = sumXL / sumL2
                }
                var error: Float = 0
                for i in 0..<n {
                    let diff = thisScale * Float(trial[i]) + thisMin - x[i]
                    error += weights[i] * (diff * diff)
                }
                if error < bestError {
                    for i in 0..<n { levels[i] = trial[i] }
                    bestError = error
                    scale = thisScale
                    lo = thisMin
                }
            }
        }
        return (scale, -lo)
    }

    /// q6_K: per sub-block of 16 a signed scale (ggml's `make_qx_quants` with x²-weighted least
    /// squares over 19 candidate scales), the scales quantized to int8 against the largest, and
    /// the levels recomputed from the rounded scales.
    static func q6_K(_ x: UnsafePointer<Float>, _ block: UnsafeMutableRawPointer) {
        var levels = [Int8](repeating: 0, count: 256)
        var scales = [Float](repeating: 0, count: 16)
        var maxScale: Float = 0, maxAbsScale: Float = 0
        for b in 0..<16 {
            let scale = levels.withUnsafeMutableBufferPointer { fitSignedScale(x + 16 * b, into: $0.baseAddress! + 16 * b) }
            scales[b] = scale
            if abs(scale) > maxAbsScale { (maxAbsScale, maxScale) = (abs(scale), scale) }
        }
        if maxAbsScale < 1e-15 {
            block.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
            return
        }
        let iscale = -128 / maxScale
        storeHalf(1 / iscale, block, 208)
        let stored = (block + 192).assumingMemoryBound(to: Int8.self)
        for b in 0..<16 { stored[b] = Int8(min(127, nearest(iscale * scales[b]))) }
        let d = QuantizedBlocks.half(block, 208)
        for b in 0..<16 {
            let scale = d * Float(stored[b])
            if scale == 0 { continue }
            for i in 0..<16 { levels[16 * b + i] = Int8(max(-32, min(31, nearest(x[16 * b + i] / scale))) + 32) }
        }
        let ql = block.assumingMemoryBound(to: UInt8.self), qh = ql + 128
        for h in 0..<2 {
            for l in 0..<32 {
                let q = (0..<4).map { UInt8(levels[128 * h + l + 32 * $0]) }
                ql[64 * h + l] = (q[0] & 0xF) | (q[2] & 0xF) << 4
                ql[64 * h + l + 32] = (q[1] & 0xF) | (q[3] & 0xF) << 4
                qh[32 * h + l] = (q[0] >> 4) | (q[1] >> 4) << 2 | (q[2] >> 4) << 4 | (q[3] >> 4) << 6
            }
        }
    }

    /// ggml's `make_qx_quants(16, 32, x, L, rmse_type: 1, nil)`: levels `L + 32` in 0…63 and the scale.
    static func fitSignedScale(_ x: UnsafePointer<Float>, into levels: UnsafeMutablePointer<Int8>) -> Float {
        let n = 16, nmax = 32
        var extreme: Float = 0, amax: Float = 0
        for i in 0..<n where abs(x[i]) > amax { (amax, extreme) = (abs(x[i]), x[i]) }
        if amax < 1e-15 {
            for i in 0..<n { levels[i] = 0 }
            return 0
        }
        var iscale = -Float(nmax) / extreme
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = max(-nmax, min(nmax - 1, nearest(iscale * x[i])))
            levels[i] = Int8(l + nmax)
            let w = x[i] * x[i], fl = Float(l)
            sumLX += w * x[i] * fl
            sumL2 += w * fl * fl
        }
        var scale: Float = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        for step in -9...9 where step != 0 {
            iscale = -(Float(nmax) + 0.1 * Float(step)) / extreme
            sumLX = 0
            sumL2 = 0
            for i in 0..<n {
                let l = max(-nmax, min(nmax - 1, nearest(iscale * x[i])))
                let w = x[i] * x[i], fl = Float(l)
                sumLX += w * x[i] * fl
                sumL2 += w * fl * fl
            }
            if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
                for i in 0..<n { levels[i] = Int8(nmax + max(-nmax, min(nmax - 1, nearest(iscale * x[i])))) }
                scale = sumLX / sumL2
                best = scale * sumLX
            }
        }
        return scale
    }
}
