import Foundation
import JSON

/// All weights of a Hugging Face model directory: `model.safetensors`, or
/// `model.safetensors.index.json` whose `weight_map` names the shard holding each tensor.
/// Loading takes tensors one by one with the shape the architecture expects, then
/// `verifyAllConsumed` reports any tensor the architecture did not use.
public final class Checkpoint: @unchecked Sendable {
    public let directory: URL
    private let files: [String: SafetensorsFile] // by file name
    private let location: [String: SafetensorsFile] // tensor name → file holding it
    private let lock = NSLock()
    private var consumed: Set<String> = []

    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"

    public init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        let indexURL = directory.appendingPathComponent(Self.indexFileName)
        let singleURL = directory.appendingPathComponent(Self.singleFileName)
        if fm.fileExists(atPath: indexURL.path) {
            (files, location) = try Self.openSharded(index: indexURL, directory: directory)
        } else if fm.fileExists(atPath: singleURL.path) {
            let file = try SafetensorsFile(url: singleURL)
            files = [Self.singleFileName: file]
            location = file.tensors.mapValues { _ in file }
        } else {
            throw ModelFormatError(.fileNotFound, "\(directory.path) holds neither \(Self.singleFileName) nor \(Self.indexFileName)")
        }
    }

    private static func openSharded(index: URL, directory: URL) throws
        -> (files: [String: SafetensorsFile], location: [String: SafetensorsFile])
    {
        let json: JSONObject
        do {
            json = try JSONObject.read(index)
        } catch {
            throw ModelFormatError(error.code == .unreadableFile ? .fileNotFound : .malformedHeader, error.message)
        }
        guard let map = json["weight_map"]?.object, map.values.allSatisfy({ $0.string != nil }) else {
            throw ModelFormatError(.malformedHeader, "\(index.path): needs a 'weight_map' object of tensor name → shard file name")
        }
        let weightMap = map.compactMapValues(\.string)

        var files: [String: SafetensorsFile] = [:]
        for shard in Set(weightMap.values).sorted() {
            let url = directory.appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: url.path) else {
                let example = weightMap.filter { $0.value == shard }.keys.sorted().first ?? ""
                throw ModelFormatError(.fileNotFound, "shard \(url.path), listed in \(index.path) for tensor '\(example)', does not exist")
            }
            files[shard] = try SafetensorsFile(url: url)
        }

        var location: [String: SafetensorsFile] = [:]
        // Tensors present in a shard but absent from the index still count, so that
        // verifyAllConsumed reports them instead of silently dropping them.
        for file in files.values {
            for name in file.tensors.keys { location[name] = file }
        }
        for (name, shard) in weightMap {
            let file = files[shard]!
            guard file.tensors[name] != nil else {
                throw ModelFormatError(
                    .missingTensor, "tensor '\(name)' is listed in \(index.path) as stored in \(file.url.path), which does not contain it")
            }
            location[name] = file
        }
        return (files, location)
    }

    /// Every tensor name, sorted.
    public var tensorNames: [String] { location.keys.sorted() }

    public func info(_ name: String) -> TensorInfo? { location[name]?.tensors[name] }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    /// The raw stored bytes of a tensor (no copy, any dtype); valid as long as this checkpoint lives.
    /// Does not mark the tensor consumed.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let file = location[name], let info = file.tensors[name] else { throw missing(name) }
        return file.bytes(of: info)
    }

    /// Takes a tensor as f32 after checking that its shape equals `shape`, and marks it consumed.
    /// Stored f32 is viewed in place; f16 and bf16 are converted into owned memory.
    public func floatTensor(_ name: String, shape: [Int]) throws -> FloatTensor {
        let (file, info) = try locate(name, shape: shape)
        let bytes = file.bytes(of: info)
        let tensor: FloatTensor
        switch info.dtype {
        case .f32 where Int(bitPattern: bytes.baseAddress) % MemoryLayout<Float>.alignment == 0 || bytes.isEmpty:
            let floats = bytes.baseAddress!.assumingMemoryBound(to: Float.self)
            tensor = FloatTensor(shape: shape, mappedAt: floats, in: file.mapped)
        case .f32:
            tensor = FloatTensor(ownedShape: shape)
            DTypeConversion.copyF32(bytes, into: tensor.mutablePointer)
        case .f16:
            tensor = FloatTensor(ownedShape: shape)
            DTypeConversion.f16ToF32(bytes, into: tensor.mutablePointer)
        case .bf16:
            tensor = FloatTensor(ownedShape: shape)
            DTypeConversion.bf16ToF32(bytes, into: tensor.mutablePointer)
        default:
            throw ModelFormatError(
                .unsupportedDType,
                "tensor '\(name)' in \(file.url.path) is \(info.dtype.rawValue); only F32, F16 and BF16 weights can be loaded as f32")
        }
        if !tensor.isMapped {
            file.mapped.release(file.dataStart + info.dataRange.lowerBound..<file.dataStart + info.dataRange.upperBound)
        }
        lock.withLock { _ = consumed.insert(name) }
        return tensor
    }

    /// Takes a tensor as stored (any dtype, no copy, valid as long as this checkpoint lives) after
    /// checking its shape, and marks it consumed: for kernels that read f16/bf16 weights directly.
    public func storedTensor(_ name: String, shape: [Int]) throws -> (info: TensorInfo, bytes: UnsafeRawBufferPointer) {
        let (file, info) = try locate(name, shape: shape)
        lock.withLock { _ = consumed.insert(name) }
        return (info, file.bytes(of: info))
    }

    /// Throws `unexpectedTensors` naming every tensor never taken, except those `ignoring` accepts
    /// (e.g. `rotary_emb.inv_freq` buffers some exporters save).
    public func verifyAllConsumed(ignoring: (String) -> Bool = { _ in false }) throws {
        let taken = lock.withLock { consumed }
        let left = location.keys.filter { !taken.contains($0) && !ignoring($0) }.sorted()
        guard left.isEmpty else {
            let listed = left.prefix(20).map { "'\($0)' (\(location[$0]!.url.lastPathComponent))" }.joined(separator: ", ")
            let more = left.count > 20 ? " and \(left.count - 20) more" : ""
            throw ModelFormatError(
                .unexpectedTensors, "\(left.count) tensor(s) in \(directory.path) not used by the model: \(listed)\(more)")
        }
    }

    private func locate(_ name: String, shape: [Int]) throws -> (file: SafetensorsFile, info: TensorInfo) {
        guard let file = location[name], let info = file.tensors[name] else { throw missing(name) }
        guard info.shape == shape else {
            throw ModelFormatError(.shapeMismatch, "tensor '\(name)' in \(file.url.path) has shape \(info.shape), expected \(shape)")
        }
        return (file, info)
    }

    private func missing(_ name: String) -> ModelFormatError {
        let stored = files.keys.sorted().joined(separator: ", ")
        return ModelFormatError(.missingTensor, "tensor '\(name)' not found in \(directory.path) (files: \(stored))")
    }
}
