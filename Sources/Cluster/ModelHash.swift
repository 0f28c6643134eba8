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
            let body = data.count - dataStart
            let step = max(body / sampleChunks, 1)
            var offset = dataStart
            while offset < data.count {
                hasher.update(data[offset..<min(offset + chunkBytes, data.count)])
                offset += max(step, chunkBytes)
            }
        }
        return ContentHash.hex(hasher.finalize())
    }
}
