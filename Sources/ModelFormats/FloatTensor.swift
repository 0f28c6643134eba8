/// An f32 tensor in row-major order: either a view of a mapped file (weights stored as f32 are
/// used in place, never copied) or owned, 64-byte-aligned memory (converted weights, scratch).
public final class FloatTensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    /// Valid as long as this tensor lives: it retains the mapped file or owns the memory.
    public let pointer: UnsafePointer<Float>
    private let mappedFile: MappedFile?
    private let ownedMemory: UnsafeMutableRawPointer?

    static let alignment = 64

    /// A view of `count` floats at `pointer` inside `file`.
    init(shape: [Int], mappedAt pointer: UnsafePointer<Float>, in file: MappedFile) {
        self.shape = shape
        count = shape.reduce(1, *)
        self.pointer = pointer
        mappedFile = file
        ownedMemory = nil
    }

    /// Owned, uninitialised memory for `shape`.
    init(ownedShape shape: [Int]) {
        let count = shape.reduce(1, *)
        // At least one element, so the pointer is valid even for empty tensors.
        let memory = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Float>.stride,
            alignment: Self.alignment)
        self.shape = shape
        self.count = count
        ownedMemory = memory
        mappedFile = nil
        pointer = UnsafePointer(memory.bindMemory(to: Float.self, capacity: max(count, 1)))
    }

    deinit { ownedMemory?.deallocate() }

    /// Owned, mutable, zero-filled.
    public static func zeros(shape: [Int]) -> FloatTensor {
        let tensor = FloatTensor(ownedShape: shape)
        tensor.mutablePointer.initialize(repeating: 0, count: tensor.count)
        return tensor
    }

    /// True when the floats are read in place from a mapped file.
    public var isMapped: Bool { mappedFile != nil }

    /// Only for owned tensors: mapped weights are read-only.
    public var mutablePointer: UnsafeMutablePointer<Float> {
        precondition(ownedMemory != nil, "FloatTensor: a memory-mapped tensor is read-only")
        return UnsafeMutablePointer(mutating: pointer)
    }

    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
}
