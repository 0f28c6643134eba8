import Foundation
import Wire

/// A content hash of a model directory that every worker of a cluster must share (docs/invariants.md,
/// 1: the same job gives the same answer on any worker only if they all run the same model).
///
/// Hashing gigabytes of weights at every start would take longer than loading them, so the hash
/// covers the small files whole (config, generation config, tokenizer, tokenizer config) and of
/// each safetensors file its name, size, header (every tensor's name, dtype, shape and offsets) and
/// a sample of its data: 256 chunks of 4 KiB spread evenly over the file. Two checkpoints with the
/// same layout but different weights differ in (almost) every sampled chunk.
public enum ModelHash {
    static let sampleChunks = 256
    static let chunkBytes = 4096

    /// A GGUF file: its metadata and tensor table sit at the start, so the first `ggufHeadBytes`
    /// (the whole header of any real file, tokenizer included) are hashed whole, then the sample.
    static let ggufHeadBytes = 32 << 20

    /// The hash of a model directory, or of a GGUF file.
    public static func compute(model url: URL) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ClusterError(.invalidArgument, "no model at \(url.path)")
        }
        return isDirectory.boolValue ? try compute(directory: url) : try compute(file: url)
    }

    static func compute(file url: URL) throws -> String {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        var hasher = SHA256()
        var size = UInt64(data.count).littleEndian
        withUnsafeBytes(of: &size) { hasher.update($0) }
        let head = min(data.count, ggufHeadBytes)
        hasher.update(data[0..<head])
        sample(data, from: head, into: &hasher)
        return ContentHash.hex(hasher.finalize())
    }

    /// `sampleChunks` chunks of `chunkBytes` spread evenly over `data[start...]`.
    private static func sample(_ data: Data, from start: Int, into hasher: inout SHA256) {
        let step = max((data.count - start) / sampleChunks, 1)
        var offset = start
        while offset < data.count {
            hasher.update(data[offset..<min(offset + chunkBytes, data.count)])
            offset += max(step, chunkBytes)
        }
    }

    public static func compute(directory: URL) throws -> String {
        var hasher = SHA256()
        for name in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"] {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            hasher.update(Array(name.utf8))
            hasher.update(try Data(contentsOf: url, options: .alwaysMapped))
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !files.isEmpty else {
            throw ClusterError(.invalidArgument, "no *.safetensors file in \(directory.path)")
        }
        for name in files {
            let data = try Data(contentsOf: directory.appendingPathComponent(name), options: .alwaysMapped)
            hasher.update(Array(name.utf8))
            var size = UInt64(data.count).littleEndian
            withUnsafeBytes(of: &size) { hasher.update($0) }
            guard data.count >= 8 else { throw ClusterError(.invalidArgument, "\(name) is too short to be safetensors") }
            let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            guard headerLength <= UInt64(data.count - 8) else {
                throw ClusterError(.invalidArgument, "\(name) announces a \(headerLength)-byte header in a \(data.count)-byte file")
            }
            let dataStart = 8 + Int(headerLength)
            hasher.update(data[0..<dataStart])
            sample(data, from: dataStart, into: &hasher)
        }
        return ContentHash.hex(hasher.finalize())
    }
}
