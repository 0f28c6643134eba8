import Foundation
import Kernels
import ModelFormats
import Models
import Synchronization

/// Another weight source's matrices widened to f32 (`WeightMatrix.widenRow`, ggml's de-quantization)
/// before use: a model reading it computes the reference's arithmetic on the reference's weights,
/// so a quantized file can be checked against transformers de-quantizing the same file.
public final class DequantizedWeights: WeightSource {
    let inner: any WeightSource
    /// Addresses of the f32 copies, freed with this object.
    private let buffers = Mutex<[Int]>([])

    public init(_ inner: any WeightSource) { self.inner = inner }
    deinit { buffers.withLock { for address in $0 { UnsafeMutablePointer<Float>(bitPattern: address)?.deallocate() } } }

    public var location: URL { inner.location }
    public func contains(_ name: String) -> Bool { inner.contains(name) }
    public func floatTensor(_ name: String, shape: [Int]) throws -> FloatTensor { try inner.floatTensor(name, shape: shape) }

    public func weightMatrix(_ name: String, shape: [Int]) throws -> WeightMatrix {
        let stored = try inner.weightMatrix(name, shape: shape)
        let (rows, columns) = (stored.rows, stored.columns)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: rows * columns)
        for r in 0..<rows { stored.widenRow(r, into: buffer + r * columns) }
        let address = Int(bitPattern: buffer)
        buffers.withLock { $0.append(address) }
        return WeightMatrix(f32: buffer, rows: rows, columns: columns)
    }

    /// Its matrices are f32 copies, never packed: this copies from them.
    public func readRows(of matrix: WeightMatrix, rows: Range<Int>, into destination: UnsafeMutableRawPointer) throws {
        destination.copyMemory(from: matrix.base + rows.lowerBound * matrix.rowBytes, byteCount: rows.count * matrix.rowBytes)
    }

    public func verifyAllConsumed(ignoring: (String) -> Bool) throws { try inner.verifyAllConsumed(ignoring: ignoring) }
}
