/// Small vector operations over raw buffers, SIMD8 with fixed-order reductions.

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
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
