import Foundation

/// One tensor of a GGUF file: its ggml type, its dimensions and where its bytes lie.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    public let type: GGMLType
    /// ggml order: `dimensions[0]` is the innermost (a matrix's columns).
    public let dimensions: [Int]
    /// Byte range from the start of the file.
    public let byteRange: Range<Int>

    /// Row-major shape, outermost first (a matrix is [rows, columns]), as safetensors writes it.
    public var shape: [Int] { dimensions.reversed() }
    public var elementCount: Int { dimensions.reduce(1, *) }
}

/// A GGUF file (llama.cpp's format, versions 2 and 3): a header, typed metadata, tensor infos, and
/// the tensor data at `general.alignment` (default 32). The file is memory-mapped; every length,
/// count and offset is checked against the file when it is opened, so a truncated or hostile file
/// is refused with an error naming what is wrong and never read out of bounds later.
public final class GGUFFile: @unchecked Sendable {
    public let url: URL
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let tensors: [String: GGUFTensorInfo]
    /// Tensor names in file order.
    public let tensorNames: [String]
    public let alignment: Int
    /// Offset of the data section from the start of the file.
    public let dataStart: Int
    public let mapped: MappedFile

    static let magic: UInt32 = 0x4655_4747 // "GGUF" little-endian
    public static let defaultAlignment = 32
    /// Arrays and strings longer than this are refused as corrupt before anything is allocated.
    static let maxElements = 1 << 28
    static let maxDimensions = 4

    public init(url: URL) throws {
        self.url = url
        mapped = try MappedFile(url: url)
        var reader = Reader(bytes: mapped.bytes, path: url.path)
        guard mapped.bytes.count >= 4, try reader.u32("the magic") == Self.magic else {
            let head = Array(mapped.bytes.prefix(4)).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw ModelFormatError(.malformedHeader, "\(url.path) is not a GGUF file (first bytes \(head), expected 47 47 55 46 \"GGUF\")")
        }
        version = try reader.u32("the version")
        guard version == 2 || version == 3 else {
            throw ModelFormatError(.malformedHeader, "\(url.path): GGUF version \(version) is not supported (2 and 3 are)")
        }
        let tensorCount = try reader.count("the tensor count", minimumBytesEach: 24)
        let metadataCount = try reader.count("the metadata count", minimumBytesEach: 13)

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for i in 0..<metadataCount {
            let key = try reader.string("metadata key \(i)")
            let type = try reader.u32("the type of '\(key)'")
            let value = try reader.value(type: type, what: "'\(key)'")
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw ModelFormatError(.malformedHeader, "\(url.path): metadata key '\(key)' appears twice")
            }
            keys.append(key)
        }

        var alignment = Self.defaultAlignment
        if let given = metadata["general.alignment"] {
            guard let value = given.integer, value > 0, value & (value - 1) == 0 else {
                throw ModelFormatError(
                    .malformedHeader, "\(url.path): general.alignment must be a power of two, not \(given) (\(given.typeName))")
            }
            alignment = value
        }

        var infos: [(name: String, type: GGMLType, dimensions: [Int], offset: Int)] = []
        for i in 0..<tensorCount {
            let name = try reader.string("the name of tensor \(i)")
            let what = "tensor '\(name)'"
            let dimensionCount = Int(try reader.u32("the dimension count of \(what)"))
            guard (1...Self.maxDimensions).contains(dimensionCount) else {
                throw ModelFormatError(.malformedHeader, "\(url.path): \(what) has \(dimensionCount) dimensions (1 to 4 allowed)")
            }
            var dimensions: [Int] = []
            for _ in 0..<dimensionCount {
                let dimension = try reader.u64("a dimension of \(what)")
                guard dimension <= UInt64(Int32.max) else {
                    throw ModelFormatError(.malformedHeader, "\(url.path): \(what) has a dimension of \(dimension)")
                }
                dimensions.append(Int(dimension))
            }
            let typeNumber = try reader.u32("the type of \(what)")
            guard let type = GGMLType(rawValue: typeNumber) else {
                throw ModelFormatError(
                    .unknownDType, "\(url.path): \(what) has ggml type \(typeNumber), which is not a known ggml type")
            }
            let offset = try reader.u64("the data offset of \(what)")
            guard offset <= UInt64(Int.max / 2), Int(offset) % alignment == 0 else {
                throw ModelFormatError(.malformedHeader, "\(url.path): \(what) has data offset \(offset), not a multiple of \(alignment)")
            }
            infos.append((name, type, dimensions, Int(offset)))
        }

        dataStart = (reader.offset + alignment - 1) / alignment * alignment
        let fileSize = mapped.bytes.count
        var tensors: [String: GGUFTensorInfo] = [:]
        for info in infos {
            let what = "tensor '\(info.name)' (\(info.type.name), dimensions \(info.dimensions))"
            let (elements, blockBytes) = info.type.blockLayout
            guard info.dimensions[0] % elements == 0 else {
                throw ModelFormatError(
                    .malformedHeader, "\(url.path): \(what): rows of \(info.dimensions[0]) values are not whole \(elements)-value blocks")
            }
            var byteCount = info.dimensions[0] / elements * blockBytes
            for dimension in info.dimensions.dropFirst() {
                let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw ModelFormatError(.malformedHeader, "\(url.path): \(what) is too large") }
                byteCount = product
            }
            let start = dataStart + info.offset
            guard start <= fileSize, byteCount <= fileSize - start else {
                throw ModelFormatError(
                    .truncatedFile,
                    "\(url.path): \(what) needs bytes \(start)..<\(start + byteCount) but the file has \(fileSize) bytes")
            }
            guard
                tensors.updateValue(
                    GGUFTensorInfo(name: info.name, type: info.type, dimensions: info.dimensions, byteRange: start..<start + byteCount),
                    forKey: info.name) == nil
            else {
                throw ModelFormatError(.malformedHeader, "\(url.path): tensor '\(info.name)' appears twice")
            }
        }
        let byStart = tensors.values.filter { !$0.byteRange.isEmpty }.sorted {
            ($0.byteRange.lowerBound, $0.name) < ($1.byteRange.lowerBound, $1.name)
        }
        for (previous, next) in zip(byStart, byStart.dropFirst()) where next.byteRange.lowerBound < previous.byteRange.upperBound {
            throw ModelFormatError(.malformedHeader, "\(url.path): tensors '\(previous.name)' and '\(next.name)' overlap")
        }
        self.metadata = metadata
        self.metadataKeys = keys
        self.tensors = tensors
        self.tensorNames = infos.map(\.name)
        self.alignment = alignment
    }

    /// The bytes of a tensor inside the mapped file (no copy); valid as long as this object lives.
    public func bytes(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: mapped.bytes[info.byteRange])
    }

    // MARK: Typed metadata access; errors name the file and the key.

    public func string(_ key: String) throws -> String {
        guard let value = try optional(key, \.string, "a string") else { throw missing(key) }
        return value
    }

    public func optionalString(_ key: String) throws -> String? { try optional(key, \.string, "a string") }

    public func integer(_ key: String) throws -> Int {
        guard let value = try optionalInteger(key) else { throw missing(key) }
        return value
    }

    public func optionalInteger(_ key: String) throws -> Int? { try optional(key, \.integer, "an integer") }

    public func optionalFloat(_ key: String) throws -> Float? { try optional(key, \.float, "a number") }

    public func optionalBool(_ key: String) throws -> Bool? { try optional(key, \.bool, "a bool") }

    /// An array of strings (absent: nil).
    public func optionalStrings(_ key: String) throws -> [String]? {
        try optional(
            key, { $0.array.flatMap { array in array.allSatisfy { $0.string != nil } ? array.map { $0.string! } : nil } },
            "an array of strings")
    }

    /// An array of integers (absent: nil).
    public func optionalIntegers(_ key: String) throws -> [Int]? {
        try optional(
            key, { $0.array.flatMap { array in array.allSatisfy { $0.integer != nil } ? array.map { $0.integer! } : nil } },
            "an array of integers")
    }

    private func optional<T>(_ key: String, _ extract: (GGUFValue) -> T?, _ expected: String) throws -> T? {
        guard let value = metadata[key] else { return nil }
        guard let result = extract(value) else {
            throw ModelFormatError(.badConfig, "\(url.path): metadata '\(key)' is \(value.typeName), expected \(expected)")
        }
        return result
    }

    private func missing(_ key: String) -> ModelFormatError {
        ModelFormatError(.badConfig, "\(url.path): metadata key '\(key)' is missing")
    }
}

/// Reads the header fields in order, refusing to run past the end of the file.
private struct Reader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    private mutating func take(_ count: Int, _ what: String) throws -> Int {
        guard count <= bytes.count - offset else {
            throw ModelFormatError(
                .truncatedFile, "\(path): the file ends at byte \(bytes.count) while reading \(what) (\(count) bytes at \(offset))")
        }
        defer { offset += count }
        return offset
    }

    mutating func u32(_ what: String) throws -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4, what), as: UInt32.self))
    }

    mutating func u64(_ what: String) throws -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8, what), as: UInt64.self))
    }

    /// A count of items each at least `minimumBytesEach` long: one the rest of the file cannot hold is corrupt.
    mutating func count(_ what: String, minimumBytesEach: Int) throws -> Int {
        let value = try u64(what)
        guard value <= UInt64(GGUFFile.maxElements), Int(value) * minimumBytesEach <= bytes.count - offset else {
            throw ModelFormatError(.truncatedFile, "\(path): \(what) is \(value), more than the \(bytes.count)-byte file can hold")
        }
        return Int(value)
    }

    mutating func string(_ what: String) throws -> String {
        let length = try count("the length of \(what)", minimumBytesEach: 1)
        let start = try take(length, what)
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<start + length]), as: UTF8.self)
    }

    mutating func value(type: UInt32, what: String) throws -> GGUFValue {
        guard let code = GGUFValue.TypeCode(rawValue: type) else {
            throw ModelFormatError(.malformedHeader, "\(path): metadata \(what) has value type \(type), which is not a GGUF value type")
        }
        switch code {
        case .uint8: return .uint8(bytes[try take(1, what)])
        case .int8: return .int8(Int8(bitPattern: bytes[try take(1, what)]))
        case .uint16: return .uint16(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(2, what), as: UInt16.self)))
        case .int16: return .int16(Int16(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(2, what), as: Int16.self)))
        case .uint32: return .uint32(try u32(what))
        case .int32: return .int32(Int32(bitPattern: try u32(what)))
        case .uint64: return .uint64(try u64(what))
        case .int64: return .int64(Int64(bitPattern: try u64(what)))
        case .float32: return .float32(Float(bitPattern: try u32(what)))
        case .float64: return .float64(Double(bitPattern: try u64(what)))
        case .bool:
            let byte = bytes[try take(1, what)]
            guard byte <= 1 else { throw ModelFormatError(.malformedHeader, "\(path): metadata \(what) is a bool holding \(byte)") }
            return .bool(byte == 1)
        case .string: return .string(try string(what))
        case .array:
            let elementType = try u32("the element type of \(what)")
            let count = try count("the length of \(what)", minimumBytesEach: 1)
            var values: [GGUFValue] = []
            values.reserveCapacity(count)
            for i in 0..<count { values.append(try value(type: elementType, what: "\(what)[\(i)]")) }
            return .array(elementType: elementType, values)
        }
    }
}

extension GGUFFile {
    /// A tensor as f32 after checking that its row-major shape is `shape`, in owned memory: its bytes
    /// are read with `pread` (`MappedFile.read`) and widened, never touched through the mapping. These
    /// are a model's small vectors (norms, biases), and touching them through the mapping kept 9 MB
    /// of the neighbouring matrices' pages resident in a 145 MB q8_0 file whose matrices are all
    /// packed (the kernel maps more than the page that faults). Types other than f32, f16 and bf16
    /// are an error naming them.
    public func floatTensor(_ name: String, shape: [Int]) throws -> FloatTensor {
        let info = try tensor(name, shape: shape)
        let convert: (UnsafeRawBufferPointer, UnsafeMutablePointer<Float>) -> Void
        switch info.type {
        case .f32: convert = DTypeConversion.copyF32
        case .f16: convert = DTypeConversion.f16ToF32
        case .bf16: convert = DTypeConversion.bf16ToF32
        default:
            throw ModelFormatError(
                .unsupportedDType, "\(url.path): tensor '\(name)' is \(info.type.name); only f32, f16 and bf16 vectors can be read as f32")
        }
        let stored = UnsafeMutableRawBufferPointer.allocate(byteCount: info.byteRange.count, alignment: 4)
        defer { stored.deallocate() }
        if !stored.isEmpty { try mapped.read(info.byteRange, into: stored.baseAddress!) }
        let tensor = FloatTensor(ownedShape: shape)
        convert(UnsafeRawBufferPointer(stored), tensor.mutablePointer)
        return tensor
    }

    /// The tensor `name` after checking that its row-major shape is `shape`.
    public func tensor(_ name: String, shape: [Int]) throws -> GGUFTensorInfo {
        guard let info = tensors[name] else {
            throw ModelFormatError(.missingTensor, "\(url.path): no tensor '\(name)'")
        }
        guard info.shape == shape else {
            throw ModelFormatError(.shapeMismatch, "\(url.path): tensor '\(name)' has shape \(info.shape), expected \(shape)")
        }
        return info
    }
}
