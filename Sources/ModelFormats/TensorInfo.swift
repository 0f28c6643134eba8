import Foundation

/// Where one tensor lives: its element type, shape and the file holding its bytes.
public struct TensorInfo: Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let file: URL
    /// Byte range of the data, relative to the start of the file's data section.
    public let dataRange: Range<Int>

    /// Number of elements (1 for a scalar of shape []).
    public var elementCount: Int { shape.reduce(1, *) }
}
