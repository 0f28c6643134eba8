import Foundation

/// Writes a GGUF file (version 3, little-endian, tensor data aligned to `general.alignment`, 32 by
/// default): the header, the metadata in the order given, the tensor infos, then each tensor's
/// bytes, which `write` asks for one tensor at a time so a large model never sits in memory whole.
public struct GGUFWriter {
    /// A tensor to write: its ggml type, its dimensions in ggml order (`dimensions[0]` is the
    /// innermost, a matrix's columns) and the byte count its type and dimensions imply.
    public struct Tensor {
        public let name: String
        public let type: GGMLType
        public let dimensions: [Int]

        public init(name: String, type: GGMLType, dimensions: [Int]) {
            (self.name, self.type, self.dimensions) = (name, type, dimensions)
        }

        /// Bytes of the tensor, or nil when its rows are not whole blocks of its type.
        public var byteCount: Int? {
            guard let first = dimensions.first, let row = type.rowBytes(columns: first) else { return nil }
            return dimensions.dropFirst().reduce(row, *)
        }
    }

    public var metadata: [(key: String, value: GGUFValue)] = []
    public var tensors: [Tensor] = []

    public init() {}

    /// Writes the file to `url`; `data(i, buffer)` fills tensor `i`'s bytes (`buffer` holds exactly
    /// `tensors[i].byteCount` bytes). The file is written under a temporary name and renamed, so a
    /// failed write leaves no partial file at `url`.
    public func write(to url: URL, data: (Int, UnsafeMutableRawBufferPointer) throws -> Void) throws {
        let alignment = metadata.first { $0.key == "general.alignment" }?.value.integer ?? GGUFFile.defaultAlignment
        var header = Data()
        header.appendLittleEndian(GGUFFile.magic)
        header.appendLittleEndian(UInt32(3))
        header.appendLittleEndian(UInt64(tensors.count))
        header.appendLittleEndian(UInt64(metadata.count))
        for (key, value) in metadata {
            header.appendString(key)
            header.appendLittleEndian(value.typeCode)
            header.appendValue(value)
        }
        var offset = 0
        var sizes: [Int] = []
        for tensor in tensors {
            guard let size = tensor.byteCount else {
                throw ModelFormatError(
                    .shapeMismatch,
                    "tensor '\(tensor.name)': \(tensor.dimensions.first ?? 0) columns are not whole \(tensor.type.name) blocks")
            }
            header.appendString(tensor.name)
            header.appendLittleEndian(UInt32(tensor.dimensions.count))
            for dimension in tensor.dimensions { header.appendLittleEndian(UInt64(dimension)) }
            header.appendLittleEndian(tensor.type.rawValue)
            header.appendLittleEndian(UInt64(offset))
            sizes.append(size)
            offset += size.roundedUp(to: alignment)
        }
        header.append(Data(count: header.count.roundedUp(to: alignment) - header.count))

        let partial = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).partial")
        guard FileManager.default.createFile(atPath: partial.path, contents: nil) else {
            throw ModelFormatError(.unwritableFile, "cannot create \(partial.path) (is the directory there and writable?)")
        }
        do {
            let handle = try FileHandle(forWritingTo: partial)
            defer { try? handle.close() }
            try handle.write(contentsOf: header)
            for (i, size) in sizes.enumerated() {
                var bytes = Data(count: size.roundedUp(to: alignment))
                try bytes.withUnsafeMutableBytes { try data(i, UnsafeMutableRawBufferPointer(rebasing: $0[0..<size])) }
                try handle.write(contentsOf: bytes)
            }
            try handle.synchronize()
        } catch let error as ModelFormatError {
            try? FileManager.default.removeItem(at: partial)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: partial)
            throw ModelFormatError(.unwritableFile, "writing \(partial.path) failed: \(error.localizedDescription)")
        }
        guard rename(partial.path, url.path) == 0 else {
            try? FileManager.default.removeItem(at: partial)
            throw ModelFormatError(.unwritableFile, "cannot write \(url.path): \(String(cString: strerror(errno)))")
        }
    }
}

extension Int {
    fileprivate func roundedUp(to alignment: Int) -> Int { (self + alignment - 1) / alignment * alignment }
}

extension GGUFValue {
    /// The value's `gguf_type` number.
    var typeCode: UInt32 {
        let code: TypeCode
        switch self {
        case .uint8: code = .uint8
        case .int8: code = .int8
        case .uint16: code = .uint16
        case .int16: code = .int16
        case .uint32: code = .uint32
        case .int32: code = .int32
        case .uint64: code = .uint64
        case .int64: code = .int64
        case .float32: code = .float32
        case .float64: code = .float64
        case .bool: code = .bool
        case .string: code = .string
        case .array: code = .array
        }
        return code.rawValue
    }
}

extension Data {
    fileprivate mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    fileprivate mutating func appendString(_ string: String) {
        let utf8 = Array(string.utf8)
        appendLittleEndian(UInt64(utf8.count))
        append(contentsOf: utf8)
    }

    fileprivate mutating func appendValue(_ value: GGUFValue) {
        switch value {
        case .uint8(let v): appendLittleEndian(v)
        case .int8(let v): appendLittleEndian(v)
        case .uint16(let v): appendLittleEndian(v)
        case .int16(let v): appendLittleEndian(v)
        case .uint32(let v): appendLittleEndian(v)
        case .int32(let v): appendLittleEndian(v)
        case .uint64(let v): appendLittleEndian(v)
        case .int64(let v): appendLittleEndian(v)
        case .float32(let v): appendLittleEndian(v.bitPattern)
        case .float64(let v): appendLittleEndian(v.bitPattern)
        case .bool(let v): appendLittleEndian(UInt8(v ? 1 : 0))
        case .string(let v): appendString(v)
        case .array(let elementType, let values):
            appendLittleEndian(elementType)
            appendLittleEndian(UInt64(values.count))
            for element in values { appendValue(element) }
        }
    }
}
