/// Widening of 16-bit floats to f32: exact for every finite value and infinity; NaN stays NaN.
enum DTypeConversion {
    /// bf16 is the top half of an f32: widening is a 16-bit shift.
    static func bf16ToF32(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutablePointer<Float>) {
        for i in 0..<(source.count / 2) {
            let bits = source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian
            destination[i] = Float(bitPattern: UInt32(bits) << 16)
        }
    }

    /// IEEE half to single (in software on the default x86-64 target; done once at load).
    static func f16ToF32(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutablePointer<Float>) {
        for i in 0..<(source.count / 2) {
            let bits = source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian
            destination[i] = Float(Float16(bitPattern: bits))
        }
    }

    /// Stored f32 that cannot be viewed in place (misaligned inside its file) is copied.
    static func copyF32(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutablePointer<Float>) {
        for i in 0..<(source.count / 4) {
            destination[i] = Float(bitPattern: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)
        }
    }
}
