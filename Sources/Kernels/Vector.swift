/// Small vector operations over raw buffers, SIMD8 with fixed-order reductions.

@inlinable @inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inlinable @inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// `Σ a[i]·b[i]`.
@inline(__always)
public func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= count { acc.addProduct(load8(a + i), load8(b + i)); i += 8 }
    var sum = acc.sum()
    while i < count { sum += a[i] * b[i]; i += 1 }
    return sum
}

/// `y[i] += alpha · x[i]`.
@inline(__always)
public func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    let a = SIMD8<Float>(repeating: alpha)
    var i = 0
    while i + 8 <= count { store8(load8(y + i).addingProduct(a, load8(x + i)), y + i); i += 8 }
    while i < count { y[i] += alpha * x[i]; i += 1 }
}

/// `y[i] += x[i]` (residual connections).
public func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count { store8(load8(y + i) + load8(x + i), y + i); i += 8 }
    while i < count { y[i] += x[i]; i += 1 }
}

/// `dot(a, b_j, count:)` for four vectors `b_j` at once: four independent accumulators, each walked
/// exactly as `dot` walks its one, so each result has `dot`'s bits (one chain of fused multiply-adds
/// waits on the last; four overlap).
@inlinable @inline(__always)
public func dot4(
    _ a: UnsafePointer<Float>, _ b0: UnsafePointer<Float>, _ b1: UnsafePointer<Float>, _ b2: UnsafePointer<Float>,
    _ b3: UnsafePointer<Float>, count: Int
) -> SIMD4<Float> {
    var (acc0, acc1, acc2, acc3) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
    var i = 0
    while i + 8 <= count {
        let x = load8(a + i)
        acc0.addProduct(x, load8(b0 + i))
        acc1.addProduct(x, load8(b1 + i))
        acc2.addProduct(x, load8(b2 + i))
        acc3.addProduct(x, load8(b3 + i))
        i += 8
    }
    var sums = SIMD4<Float>(acc0.sum(), acc1.sum(), acc2.sum(), acc3.sum())
    while i < count {
        sums[0] += a[i] * b0[i]
        sums[1] += a[i] * b1[i]
        sums[2] += a[i] * b2[i]
        sums[3] += a[i] * b3[i]
        i += 1
    }
    return sums
}

/// `out = Σ_j weights[j] · row(j)` over `count` rows of `width`: the bits of zeroing `out` and calling
/// `axpy(weights[j], row(j), out, count: width)` for j in order (every element summed in row order
/// with the same fused multiply-adds), but with the sums held in registers, 64 elements at a time,
/// instead of stored and reloaded for every row.
@inlinable @inline(__always)
public func weightedSum(
    _ weights: UnsafePointer<Float>, count: Int, width: Int, into out: UnsafeMutablePointer<Float>,
    row: (Int) -> UnsafePointer<Float>
) {
    var column = 0
    while column + 64 <= width {
        var (s0, s1, s2, s3) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
        var (s4, s5, s6, s7) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
        for j in 0..<count {
            let x = row(j) + column, w = SIMD8<Float>(repeating: weights[j])
            s0 = s0.addingProduct(w, load8(x))
            s1 = s1.addingProduct(w, load8(x + 8))
            s2 = s2.addingProduct(w, load8(x + 16))
            s3 = s3.addingProduct(w, load8(x + 24))
            s4 = s4.addingProduct(w, load8(x + 32))
            s5 = s5.addingProduct(w, load8(x + 40))
            s6 = s6.addingProduct(w, load8(x + 48))
            s7 = s7.addingProduct(w, load8(x + 56))
        }
        let o = out + column
        store8(s0, o)
        store8(s1, o + 8)
        store8(s2, o + 16)
        store8(s3, o + 24)
        store8(s4, o + 32)
        store8(s5, o + 40)
        store8(s6, o + 48)
        store8(s7, o + 56)
        column += 64
    }
    while column + 8 <= width {
        var s = SIMD8<Float>()
        for j in 0..<count { s = s.addingProduct(SIMD8<Float>(repeating: weights[j]), load8(row(j) + column)) }
        store8(s, out + column)
        column += 8
    }
    while column < width {
        var s: Float = 0
        for j in 0..<count { s += weights[j] * row(j)[column] }
        out[column] = s
        column += 1
    }
}
