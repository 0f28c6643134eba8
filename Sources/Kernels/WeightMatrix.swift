import CKernels

/// A (rows, columns) row-major weight matrix used where it is stored — usually a memory-mapped
/// checkpoint — in f32, f16, bf16 or one of GGUF's block-quantized formats. Kernels widen 16-bit
/// weights to f32 in registers and decode quantized blocks in registers, so a checkpoint is served
/// from the memory (and bandwidth) it occupies on disk.
public struct WeightMatrix: @unchecked Sendable {
    /// How one row is stored. Quantized formats cut a row into blocks of `blockSize` elements of
    /// `blockBytes` bytes each, byte for byte as llama.cpp's ggml lays them out (QuantizedBlocks.swift
    /// documents each layout), so a GGUF file's tensors are used where they lie.
    public enum Element: Sendable, CaseIterable {
        case f32, f16, bf16
        case q8_0, q4_0, q4_1, q5_0, q5_1
        case q4_K, q5_K, q6_K

        /// Elements per block: 1 for plain floats, 32 for the 8/5/4-bit formats, 256 for the K-quants'
        /// super-blocks.
        public var blockSize: Int {
            switch self {
            case .f32, .f16, .bf16: 1
            case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1: 32
            case .q4_K, .q5_K, .q6_K: 256
            }
        }

        /// Bytes per block (ggml's `sizeof(block_…)`).
        public var blockBytes: Int {
            switch self {
            case .f32: 4
            case .f16, .bf16: 2
            case .q8_0: 34
            case .q4_0: 18
            case .q4_1: 20
            case .q5_0: 22
            case .q5_1: 24
            case .q4_K: 144
            case .q5_K: 176
            case .q6_K: 210
            }
        }

        /// Block-quantized formats, which `linear` multiplies from packed rows (`packedForProducts()`).
        public var isQuantized: Bool { blockSize > 1 }

        /// Bytes of one element of a plain float format; quantized formats have none (see `rowBytes`).
        public var byteSize: Int {
            precondition(!isQuantized, "\(self) stores blocks, not elements: use rowBytes(columns:)")
            return blockBytes
        }

        /// Bytes of a row of `columns` elements, or nil when `columns` is not a whole number of blocks.
        public func rowBytes(columns: Int) -> Int? {
            columns % blockSize == 0 ? columns / blockSize * blockBytes : nil
        }
    }

    public let base: UnsafeRawPointer
    public let element: Element
    public let rows: Int
    public let columns: Int
    /// Bytes from one row to the next.
    public let rowBytes: Int
    /// The copy of a quantized matrix that `linear` multiplies (`packedForProducts()`); nil for float
    /// formats, and for a matrix only looked up row by row.
    public private(set) var packed: PackedRows?

    public init(base: UnsafeRawPointer, element: Element, rows: Int, columns: Int) {
        guard let rowBytes = element.rowBytes(columns: columns) else {
            preconditionFailure("a \(element) row holds whole blocks of \(element.blockSize); \(columns) columns do not")
        }
        self.base = base
        self.element = element
        self.rows = rows
        self.columns = columns
        self.rowBytes = rowBytes
    }

    public init(f32 pointer: UnsafePointer<Float>, rows: Int, columns: Int) {
        self.init(base: UnsafeRawPointer(pointer), element: .f32, rows: rows, columns: columns)
    }

    public var byteCount: Int { rows * rowBytes }

    /// This matrix as `linear` needs it: quantized rows are copied into groups of 16 rows interleaved
    /// 4 weights at a time (CKernels' `sb_pack_rows`), the layout their kernels read; float formats
    /// are multiplied where they lie and come back unchanged. `readRows` copies
    /// the stored bytes of a run of rows into a buffer: a loader reads them from the file without
    /// mapping them, so resident memory holds the packed copy only.
    public func packedForProducts(
        readRows: (_ rows: Range<Int>, _ into: UnsafeMutableRawPointer) throws -> Void
    ) rethrows -> WeightMatrix {
        guard element.isQuantized, self.packed == nil else { return self }
        var copy = self
        copy.packed = try PackedRows(self, readRows: readRows)
        return copy
    }

    /// `packedForProducts(readRows:)` reading the rows where `base` points (memory the caller owns).
    public func packedForProducts() -> WeightMatrix {
        packedForProducts { rows, buffer in buffer.copyMemory(from: base + rows.lowerBound * rowBytes, byteCount: rows.count * rowBytes) }
    }

    /// Writes row `r` as f32 into `out` (columns values): an embedding lookup. Quantized rows are
    /// decoded exactly as ggml's `dequantize_row_*` (and gguf-py's `dequantize`) decode them.
    public func widenRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let start = base + r * rowBytes
        switch element {
        case .f32: out.update(from: start.assumingMemoryBound(to: Float.self), count: columns)
        case .f16: widen(start, Float16.self, out)
        case .bf16: widen(start, BFloat16Bits.self, out)
        default: QuantizedBlocks.dequantize(element, start, count: columns, into: out)
        }
    }

    private func widen<W: WeightElement>(_ start: UnsafeRawPointer, _: W.Type, _ out: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 8 <= columns { store8(W.load8(start, i), out + i); i += 8 }
        while i < columns { out[i] = W.load1(start, i); i += 1 }
    }
}

/// The packed copy of a quantized matrix's rows
/// (`WeightMatrix.packedForProducts()`): allocated once at load, aligned to cache lines, read-only
/// afterwards.
public final class PackedRows {
    public let pointer: UnsafeRawPointer
    public let byteCount: Int

    /// Packs `matrix` in runs of `rowsPerRun` rows (whole groups), each run read by `readRows` into a
    /// buffer first.
    init(_ matrix: WeightMatrix, readRows: (_ rows: Range<Int>, _ into: UnsafeMutableRawPointer) throws -> Void) rethrows {
        let type = matrix.element.kernelType, columns = Int64(matrix.columns)
        byteCount = sb_packed_bytes(type, Int64(matrix.rows), columns)
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.rowsPerRun * matrix.rowBytes, alignment: 64)
        defer { buffer.deallocate() }
        let groupBytes = sb_packed_bytes(type, Int64(SB_PACK_ROWS), columns)
        do {
            for start in stride(from: 0, to: matrix.rows, by: Self.rowsPerRun) {
                let end = min(start + Self.rowsPerRun, matrix.rows)
                try readRows(start..<end, buffer)
                sb_pack_rows(
                    type, buffer, matrix.rowBytes, Int64(end - start), columns, storage + start / Int(SB_PACK_ROWS) * groupBytes)
            }
        } catch {
            storage.deallocate()
            throw error
        }
        pointer = UnsafeRawPointer(storage)
    }

    /// 1,024 rows: about 600 KB of a q8_0 row of 576, the buffer a run is read into.
    static let rowsPerRun = 1024

    deinit { pointer.deallocate() }
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
