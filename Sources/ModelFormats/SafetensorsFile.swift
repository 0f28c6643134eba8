import Foundation
import JSON

/// One `.safetensors` file: an 8-byte little-endian header length, a JSON header
/// (`name → {dtype, shape, data_offsets}` plus an optional `__metadata__` of strings),
/// then the data section. The file is memory-mapped; every tensor's range is checked against
/// the file size, its dtype and its shape when the file is opened, so later reads cannot fault.
public final class SafetensorsFile: @unchecked Sendable {
    public let url: URL
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    let mapped: MappedFile
    /// Offset of the data section from the start of the file.
    let dataStart: Int

    /// Headers larger than this are refused as corrupt (the reference implementation's limit).
    static let maxHeaderSize = 100_000_000

    public init(url: URL) throws {
        self.url = url
        mapped = try MappedFile(url: url)
        let file = mapped.bytes
        let path = url.path
        guard file.count >= 8 else {
            throw ModelFormatError(.truncatedFile, "\(path): \(file.count) bytes, too short for a safetensors header length")
        }
        let headerLength = file.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard headerLength <= UInt64(file.count - 8) else {
            throw ModelFormatError(.truncatedFile, "\(path): header length \(headerLength) exceeds the \(file.count - 8) bytes after it")
        }
        guard headerLength <= UInt64(Self.maxHeaderSize) else {
            throw ModelFormatError(.malformedHeader, "\(path): header length \(headerLength) is over the \(Self.maxHeaderSize)-byte limit")
        }
        dataStart = 8 + Int(headerLength)
        let dataSize = file.count - dataStart
        let header = Data(file[8..<dataStart])

        let json: JSONValue
        do {
            json = try JSONValue.parse(header, name: "\(path): header")
        } catch {
            throw ModelFormatError(.malformedHeader, error.message)
        }
        guard let entries = json.object else {
            throw ModelFormatError(.malformedHeader, "\(path): header is not a JSON object")
        }

        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in entries {
            if name == "__metadata__" {
                guard let dict = value.object, dict.values.allSatisfy({ $0.string != nil }) else {
                    throw ModelFormatError(.malformedHeader, "\(path): __metadata__ must map strings to strings")
                }
                metadata = dict.compactMapValues(\.string)
                continue
            }
            tensors[name] = try Self.parseEntry(name: name, value: value, url: url, dataSize: dataSize)
        }
        try Self.checkNoOverlap(tensors, path: path)
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Two tensors sharing bytes means a corrupt header (safetensors never stores shared tensors).
    private static func checkNoOverlap(_ tensors: [String: TensorInfo], path: String) throws {
        let byStart = tensors.values.filter { !$0.dataRange.isEmpty }
            .sorted { ($0.dataRange.lowerBound, $0.name) < ($1.dataRange.lowerBound, $1.name) }
        for (previous, next) in zip(byStart, byStart.dropFirst()) where next.dataRange.lowerBound < previous.dataRange.upperBound {
            throw ModelFormatError(
                .malformedHeader, "\(path): tensors '\(previous.name)' \(previous.dataRange) and '\(next.name)' \(next.dataRange) overlap")
        }
    }

    private static func parseEntry(name: String, value: JSONValue, url: URL, dataSize: Int) throws -> TensorInfo {
        let what = "tensor '\(name)' in \(url.path)"
        guard let entry = value.object,
            let dtypeName = entry["dtype"]?.string,
            let shapeValues = entry["shape"]?.array,
            let offsetValues = entry["data_offsets"]?.array
        else {
            throw ModelFormatError(.malformedHeader, "\(what): entry needs 'dtype' (string), 'shape' and 'data_offsets' (arrays)")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            let known = DType.allCases.map(\.rawValue).joined(separator: ", ")
            throw ModelFormatError(.unknownDType, "\(what): unknown dtype '\(dtypeName)' (known: \(known))")
        }
        let shape = try shapeValues.map { value -> Int in
            guard let dim = value.integer, dim >= 0 else {
                throw ModelFormatError(.malformedHeader, "\(what): shape \(text(shapeValues)) must hold non-negative integers")
            }
            return dim
        }
        let offsets = offsetValues.compactMap(\.integer)
        guard offsets.count == 2, offsetValues.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
            throw ModelFormatError(
                .malformedHeader, "\(what): data_offsets \(text(offsetValues)) must be [begin, end] with 0 <= begin <= end")
        }
        guard offsets[1] <= dataSize else {
            throw ModelFormatError(
                .truncatedFile,
                "\(what): data ends at byte \(offsets[1]) of the data section but the file holds only \(dataSize) data bytes")
        }
        let expected = byteCount(shape: shape, dtype: dtype)
        guard expected == offsets[1] - offsets[0] else {
            let need = expected.map { "\($0) bytes" } ?? "more bytes than fit in memory"
            throw ModelFormatError(
                .malformedHeader, "\(what): shape \(shape) of \(dtypeName) needs \(need) but data_offsets give \(offsets[1] - offsets[0])")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, file: url, dataRange: offsets[0]..<offsets[1])
    }

    /// Elements × element size, or nil when that overflows.
    private static func byteCount(shape: [Int], dtype: DType) -> Int? {
        var total = dtype.byteSize
        for dim in shape {
            let (product, overflow) = total.multipliedReportingOverflow(by: dim)
            if overflow { return nil }
            total = product
        }
        return total
    }

    /// JSON numbers arrive as NSNumber (or Int); accept only exact non-fractional integers.
    /// A header array as JSON shows it, for error messages.
    private static func text(_ values: [JSONValue]) -> String {
        let data = (try? JSONEncoder().encode(values)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The raw bytes of a tensor, inside the mapped file (no copy). Valid as long as this object lives.
    public func bytes(of name: String) throws -> UnsafeRawBufferPointer {
        guard let info = tensors[name] else {
            throw ModelFormatError(.missingTensor, "tensor '\(name)' is not in \(url.path)")
        }
        return bytes(of: info)
    }

    func bytes(of info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: mapped.bytes[(dataStart + info.dataRange.lowerBound)..<(dataStart + info.dataRange.upperBound)])
    }
}
