/// An image as a vision tower takes it: float32 (3, height, width), channel-first, normalized —
/// `pixel_values[0]` of a transformers image processor.
public struct PreprocessedImage: Sendable {
    public let height: Int
    public let width: Int
    /// (3, height, width) row-major.
    public let values: [Float]

    public init(height: Int, width: Int, values: [Float]) {
        precondition(values.count == 3 * height * width, "PreprocessedImage: \(values.count) values for 3×\(height)×\(width)")
        self.height = height
        self.width = width
        self.values = values
    }
}
