import CCrypto
import Foundation
import Glibc
import Synchronization
import Wire

/// The identity of a model: one SHA-256 digest over every byte of everything that changes its
/// answers, so that two workers report the same identity only if they serve the same model (docs/invariants.md,
/// invariant 1: the same job gives the same answer on any worker).
///
/// What is hashed: a model directory's files at its top level — weights (every byte of every
/// `*.safetensors`/`*.gguf`), config, generation config, tokenizer files, chat template
/// (`chat_template.jinja`, `chat_template.json`, the tokenizer config's), processor and preprocessor
/// configs — everything but documentation (`*.md`, `LICENSE*`, `NOTICE*`, `USE_POLICY*`), hidden
/// files and subdirectories (the engine reads none of them; Meta's `original/` holds a second copy
/// of the weights). A model that is a single file (e.g. GGUF) is that file's bytes. A chat template
/// that replaces the model's (`--chat-template`) is part of the identity too, and so is a KV cache
/// kept in another type than f32 (`--kv-type f16` rounds keys and values, so answers may differ).
///
/// How: each file is cut into 64 MiB chunks hashed in parallel on all cores (OpenSSL's SHA-256,
/// which uses the CPU's SHA extensions); a file's digest is the SHA-256 of its chunk digests, and the
/// identity the SHA-256 of a list of (name, size, file digest) lines. File digests are cached by size
/// and modification time (`ModelIdentityCache`), so only a changed file is read again.
public enum ModelIdentity {
    static let chunkBytes = 64 << 20
    /// The first line of the hashed list; a change of the scheme changes every identity.
    static let scheme = "stagebeam model identity 1"

    /// The identity of the model at `model` (a directory or one file), with `chatTemplate` — the
    /// text of a template replacing the model's — when there is one, and `kvCacheType` when the KV
    /// cache is not f32 (nil or "f32" leave the identity as the files give it). `useCache: false`
    /// hashes every file again; `cacheDirectory` replaces the XDG cache directory.
    public static func compute(
        model: URL, chatTemplate: String? = nil, kvCacheType: String? = nil, useCache: Bool = true, cacheDirectory: URL? = nil
    ) throws -> String {
        let files = try modelFiles(model)
        var cache = useCache ? ModelIdentityCache(model: model, directory: cacheDirectory) : nil
        var digests: [String?] = files.map { cache?.digest(of: $0) }
        let missing = files.indices.filter { digests[$0] == nil }
        if !missing.isEmpty {
            let computed = try hashFiles(missing.map { files[$0] })
            for (index, digest) in zip(missing, computed) {
                digests[index] = digest
                cache?.record(files[index], digest: digest)
            }
            cache?.save()
        }
        var list = scheme + "\n"
        for (file, digest) in zip(files, digests) { list += "\(file.name)\t\(file.size)\t\(digest!)\n" }
        if let chatTemplate { list += "chat template override\t\(sha256Hex(Array(chatTemplate.utf8)))\n" }
        if let kvCacheType, kvCacheType != "f32" { list += "kv cache\t\(kvCacheType)\n" }
        return sha256Hex(Array(list.utf8))
    }

    /// A file that is part of a model, as found on disk.
    struct ModelFile {
        /// The name inside the model directory ("" for a model that is one file).
        let name: String
        let path: String
        let size: Int
        /// Modification time in nanoseconds since the epoch.
        let modified: Int64
    }

    static func modelFiles(_ model: URL) throws -> [ModelFile] {
        let path = model.path
        var status = stat()
        guard stat(path, &status) == 0 else { throw ClusterError(.invalidArgument, "model \(path): \(String(cString: strerror(errno)))") }
        if status.st_mode & S_IFMT == S_IFREG {
            return [ModelFile(name: "", path: path, size: Int(status.st_size), modified: mtime(status))]
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw ClusterError(.invalidArgument, "model \(path) is neither a file nor a readable directory")
        }
        var files: [ModelFile] = []
        for name in names where !isDocumentation(name) {
            let filePath = model.appendingPathComponent(name).path
            var fileStatus = stat()
            // stat follows symbolic links (a Hugging Face cache links every file to a blob).
            guard stat(filePath, &fileStatus) == 0, fileStatus.st_mode & S_IFMT == S_IFREG else { continue }
            files.append(ModelFile(name: name, path: filePath, size: Int(fileStatus.st_size), modified: mtime(fileStatus)))
        }
        guard files.contains(where: { $0.name.hasSuffix(".safetensors") || $0.name.hasSuffix(".gguf") }) else {
            throw ClusterError(.invalidArgument, "no weights (*.safetensors or *.gguf) in \(path)")
        }
        return files
    }

    private static func isDocumentation(_ name: String) -> Bool {
        let upper = name.uppercased()
        return name.hasPrefix(".") || upper.hasSuffix(".MD") || ["LICENSE", "NOTICE", "USE_POLICY"].contains { upper.hasPrefix($0) }
    }

    private static func mtime(_ status: stat) -> Int64 {
        Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec)
    }

    /// The digests of `files` (hex), every chunk of every file hashed in parallel.
    static func hashFiles(_ files: [ModelFile]) throws -> [String] {
        struct Chunk {
            let file: Int
            let offset: Int
            let length: Int
        }
        var plan: [Chunk] = []
        var chunkRanges: [Range<Int>] = []
        for (index, file) in files.enumerated() {
            let first = plan.count
            var offset = 0
            repeat {
                plan.append(Chunk(file: index, offset: offset, length: min(chunkBytes, file.size - offset)))
                offset += chunkBytes
            } while offset < file.size
            chunkRanges.append(first..<plan.count)
        }
        let chunks = plan
        let digests = Mutex([UInt8](repeating: 0, count: chunks.count * 32))
        let failures = FailureList()
        let descriptors = try files.map { file -> Int32 in
            let fd = open(file.path, O_RDONLY)
            guard fd >= 0 else { throw ClusterError(.invalidArgument, "cannot read \(file.path): \(String(cString: strerror(errno)))") }
            return fd
        }
        defer { for fd in descriptors { close(fd) } }
        DispatchQueue.concurrentPerform(iterations: chunks.count) { index in
            let chunk = chunks[index]
            do {
                let digest = try hashChunk(fd: descriptors[chunk.file], offset: chunk.offset, length: chunk.length)
                digests.withLock { $0.replaceSubrange((index * 32)..<(index * 32 + 32), with: digest) }
            } catch {
                failures.append("\(files[chunk.file].path): \(error)")
            }
        }
        if let failure = failures.first { throw ClusterError(.invalidArgument, "cannot hash the model: \(failure)") }
        let all = digests.withLock { $0 }
        return chunkRanges.map { range in sha256Hex(Array(all[(range.lowerBound * 32)..<(range.upperBound * 32)])) }
    }

    /// SHA-256 of `length` bytes of `fd` from `offset`, read in 4 MiB pieces.
    private static func hashChunk(fd: Int32, offset: Int, length: Int) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw ClusterError(.internal, "EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else { throw ClusterError(.internal, "EVP_DigestInit_ex failed") }
        let pieceBytes = 4 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: pieceBytes, alignment: 4096)
        defer { buffer.deallocate() }
        var done = 0
        while done < length {
            let read = pread(fd, buffer, min(pieceBytes, length - done), off_t(offset + done))
            if read < 0, errno == EINTR { continue }
            guard read > 0 else {
                throw ClusterError(
                    .invalidArgument, read == 0 ? "file shorter than its size (changed while hashed?)" : String(cString: strerror(errno)))
            }
            guard EVP_DigestUpdate(context, buffer, read) == 1 else { throw ClusterError(.internal, "EVP_DigestUpdate failed") }
            done += read
        }
        var digest = [UInt8](repeating: 0, count: 32)
        var size: UInt32 = 0
        guard EVP_DigestFinal_ex(context, &digest, &size) == 1, size == 32 else {
            throw ClusterError(.internal, "EVP_DigestFinal_ex failed")
        }
        return digest
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var size: UInt32 = 0
        let ok = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &size, EVP_sha256(), nil) }
        precondition(ok == 1 && size == 32, "OpenSSL's SHA-256 failed")
        return ContentHash.hex(digest)
    }
}

/// Errors of the parallel hashing tasks.
private final class FailureList: Sendable {
    private let list = Mutex<[String]>([])
    func append(_ failure: String) { list.withLock { $0.append(failure) } }
    var first: String? { list.withLock { $0.first } }
}
