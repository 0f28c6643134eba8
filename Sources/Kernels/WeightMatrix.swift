/// A (rows, columns) row-major weight matrix used where it is stored — usually a memory-mapped
/// checkpoint — in f32, f16 or bf16. Kernels widen 16-bit weights to f32 in registers, so a bf16
/// checkpoint is served from half the memory (and half the bandwidth) of an f32 copy.
public struct WeightMatrix: @unchecked Sendable {
    public enum Element: Sendable {
        case f32, f16, bf16

        public var byteSize: Int { self == .f32 ? 4 : 2 }
    }

    public let base: UnsafeRawPointer
    public let element: Element
    public let rows: Int
    public let columns: Int

    public init(base: UnsafeRawPointer, element: Element, rows: Int, columns: Int) {
        self.base = base
        self.element = element
        self.rows = rows
        self.columns = columns
    }

    public init(f32 pointer: UnsafePointer<Float>, rows: Int, columns: Int) {
        self.init(base: UnsafeRawPointer(pointer), element: .f32, rows: rows, columns: columns)
    }

    public var byteCount: Int { rows * columns * element.byteSize }

    /// Writes row `r` as f32 into `out` (columns values): an embedding lookup.
    public func widenRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let start = base + r * columns * element.byteSize
        switch element {
        case .f32: out.update(from: start.assumingMemoryBound(to: Float.self), count: columns)
        case .f16: widen(start, Float16.self, out)
        case .bf16: widen(start, BFloat16Bits.self, out)
        }
    }

    private func widen<W: WeightElement>(_ start: UnsafeRawPointer, _: W.Type, _ out: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 8 <= columns { store8(W.load8(start, i), out + i); i += 8 }
        while i < columns { out[i] = W.load1(start, i); i += 1 }
    }
}

/// How a stored weight element becomes f32: eight at a time for the kernels, one for tails.
protocol WeightElement {
    static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float>
    static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float
}

extension Float: WeightElement {
    @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        (base + index * 4).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        (base + index * 4).loadUnaligned(as: Float.self)
    }
}

extension Float16: WeightElement {
    // With AVX2 targets this is one vcvtph2ps per eight weights.
    @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        SIMD8<Float>((base + index * 2).loadUnaligned(as: SIMD8<Float16>.self))
    }
    @inline(__always) static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float((base + index * 2).loadUnaligned(as: Float16.self))
    }
}

/// bf16 is the top half of an f32: widening is a 16-bit shift.
enum BFloat16Bits: WeightElement {
    @inline(__always) static func load8(_ base: UnsafeRawPointer, _ index: Int) -> SIMD8<Float> {
        let bits = SIMD8<UInt32>(truncatingIfNeeded: (base + index * 2).loadUnaligned(as: SIMD8<UInt16>.self)) &<< 16
        return unsafeBitCast(bits, to: SIMD8<Float>.self)
    }
    @inline(__always) static func load1(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(bitPattern: UInt32((base + index * 2).loadUnaligned(as: UInt16.self)) << 16)
    }
}
