/// GGUF's block-quantized formats, byte for byte as ggml (ggml-common.h) stores them, and their
/// decoding to f32. All multi-byte fields are little-endian; `half` is an IEEE f16.
///
/// 32-element blocks (element `j < 16` is the low nibble of `qs[j]`, element `j + 16` its high nibble):
/// - q8_0 (34 bytes): `half d; int8 qs[32]` — `x = d·q`.
/// - q4_0 (18 bytes): `half d; uint8 qs[16]` — `x = d·(q − 8)`.
/// - q4_1 (20 bytes): `half d, m; uint8 qs[16]` — `x = d·q + m`.
/// - q5_0 (22 bytes): `half d; uint32 qh; uint8 qs[16]` — bit `i` of `qh` is bit 4 of element `i`;
///   `x = d·(q − 16)`.
/// - q5_1 (24 bytes): `half d, m; uint32 qh; uint8 qs[16]` — `x = d·q + m`.
///
/// 256-element super-blocks:
/// - q4_K (144 bytes): `half d, dmin; uint8 scales[12]; uint8 qs[128]` — eight sub-blocks of 32 with
///   6-bit scale `sc` and min `m` packed in `scales` (see `scaleAndMin`); sub-blocks 2j and 2j+1 are the
///   low and high nibbles of `qs[32j..<32j+32]`; `x = (d·sc)·q − dmin·m`.
/// - q5_K (176 bytes): `half d, dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]` — as q4_K, with
///   bit 4 of element `l` of sub-block `s` in bit `s` of `qh[l]`.
/// - q6_K (210 bytes): `uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d` — sixteen sub-blocks of
///   16 with an 8-bit signed scale each; in each half `h` of 128 elements, element `l + 32i` (i in 0..<4)
///   takes its low four bits from `ql[64h + l + 32(i & 1)]` (low nibble for i < 2, high for i ≥ 2) and its
///   top two from bits `2i…2i+1` of `qh[32h + l]`; `x = (d·scale)·(q − 32)`.
enum QuantizedBlocks {
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    /// The 6-bit scale and min of sub-block `j` (0..<8) of a q4_K / q5_K super-block.
    @inline(__always) static func scaleAndMin(_ scales: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
        let q = scales.assumingMemoryBound(to: UInt8.self)
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }

    /// Decodes `count` elements (whole blocks) starting at `source` into `out`. The arithmetic is
    /// ggml's (`dequantize_row_*`): the products and sums below, in this order, without fused
    /// multiply-adds, so the values are bit-identical to llama.cpp's and gguf-py's.
    static func dequantize(_ element: WeightMatrix.Element, _ source: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        let blocks = count / element.blockSize
        for b in 0..<blocks {
            let block = source + b * element.blockBytes
            let y = out + b * element.blockSize
            switch element {
            case .q8_0:
                let d = half(block, 0)
                for j in 0..<32 { y[j] = Float(block.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
            case .q4_0, .q4_1:
                let d = half(block, 0)
                let offset = element == .q4_0 ? 2 : 4
                let qs = (block + offset).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    let low = Int(qs[j] & 0xF), high = Int(qs[j] >> 4)
                    if element == .q4_0 {
                        y[j] = d * Float(low - 8)
                        y[j + 16] = d * Float(high - 8)
                    } else {
                        let m = half(block, 2)
                        y[j] = d * Float(low) + m
                        y[j + 16] = d * Float(high) + m
                    }
                }
            case .q5_0, .q5_1:
                let d = half(block, 0)
                let offset = element == .q5_0 ? 2 : 4
                let qh = block.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                let qs = (block + offset + 4).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    let low = Int(qs[j] & 0xF) | Int((qh >> UInt32(j)) & 1) << 4
                    let high = Int(qs[j] >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
                    if element == .q5_0 {
                        y[j] = d * Float(low - 16)
                        y[j + 16] = d * Float(high - 16)
                    } else {
                        let m = half(block, 2)
                        y[j] = d * Float(low) + m
                        y[j + 16] = d * Float(high) + m
                    }
                }
            case .q4_K, .q5_K:
                let d = half(block, 0), dmin = half(block, 2)
                let scales = block + 4
                let five = element == .q5_K
                let qh = (block + 16).assumingMemoryBound(to: UInt8.self)
                let qs = (block + (five ? 48 : 16)).assumingMemoryBound(to: UInt8.self)
                for s in 0..<8 {
                    let (sc, m) = scaleAndMin(scales, s)
                    let scale = d * Float(sc), offset = dmin * Float(m)
                    let bytes = qs + 32 * (s / 2)
                    for l in 0..<32 {
                        var q = Int(s % 2 == 0 ? bytes[l] & 0xF : bytes[l] >> 4)
                        if five { q |= Int((qh[l] >> UInt8(s)) & 1) << 4 }
                        y[32 * s + l] = scale * Float(q) - offset
                    }
                }
            case .q6_K:
                let ql = block.assumingMemoryBound(to: UInt8.self)
                let qh = ql + 128
                let scales = (block + 192).assumingMemoryBound(to: Int8.self)
                let d = half(block, 208)
                for h in 0..<2 {
                    for i in 0..<4 {
                        for l in 0..<32 {
                            let lowByte = ql[64 * h + l + 32 * (i & 1)]
                            let low = i < 2 ? lowByte & 0xF : lowByte >> 4
                            let top = (qh[32 * h + l] >> UInt8(2 * i)) & 3
                            let e = 128 * h + 32 * i + l
                            y[e] = (d * Float(scales[e / 16])) * Float(Int(low | top << 4) - 32)
                        }
                    }
                }
            case .f32, .f16, .bf16:
                preconditionFailure("\(element) is not block-quantized")
            }
        }
    }
}
