import Foundation

/// The file digests of a model's identity, kept between runs so that a worker's start reads gigabytes
/// of weights only once: `.stagebeam-identity.json` beside the model (in its directory, or next to a
/// model that is one file) or, where that is not writable (a read-only mount), a file named after the
/// model's path in `$XDG_CACHE_HOME/stagebeam/identity` (default `~/.cache/stagebeam/identity`).
///
/// An entry holds a file's name, size, modification time and digest; a file whose size or
/// modification time differs is hashed again. Whoever can write the cache can write the weights too,
/// so the cache adds no way to fake an identity that the files do not already offer.
struct ModelIdentityCache {
    static let fileName = ".stagebeam-identity.json"

    /// Where the cache of a read-only model goes.
    let directory: URL
    private let model: URL
    private var entries: [String: Entry] = [:]
    private var changed = false

    struct Entry: Codable, Equatable {
        var size: Int
        var modifiedNs: Int64
        var sha256: String
    }

    private struct Stored: Codable {
        var scheme: String
        var files: [String: Entry]
    }

    /// `directory`: where to keep caches of models whose own place is read-only (default: the XDG cache).
    init(model: URL, directory: URL? = nil) {
        self.directory = directory ?? Self.defaultDirectory
        self.model = model
        for url in [besideModel, inCacheDirectory] {
            guard let data = try? Data(contentsOf: url), let stored = try? JSONDecoder().decode(Stored.self, from: data),
                stored.scheme == ModelIdentity.scheme
            else { continue }
            entries = stored.files
            break
        }
    }

    static var defaultDirectory: URL {
        let environment = ProcessInfo.processInfo.environment
        let base =
            environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return base.appendingPathComponent("stagebeam/identity")
    }

    /// The cached digest of `file`, if its size and modification time are those recorded.
    func digest(of file: ModelIdentity.ModelFile) -> String? {
        guard let entry = entries[file.name], entry.size == file.size, entry.modifiedNs == file.modified else { return nil }
        return entry.sha256
    }

    mutating func record(_ file: ModelIdentity.ModelFile, digest: String) {
        entries[file.name] = Entry(size: file.size, modifiedNs: file.modified, sha256: digest)
        changed = true
    }

    /// Writes the cache beside the model, else in the cache directory; a cache that cannot be written
    /// anywhere only costs the next start a full hash.
    func save() {
        guard changed, let data = try? JSONEncoder().encode(Stored(scheme: ModelIdentity.scheme, files: entries)) else { return }
        for url in [besideModel, inCacheDirectory] {
            try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            if (try? data.write(to: url, options: .atomic)) != nil { return }
        }
    }

    private var besideModel: URL {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: model.path, isDirectory: &isDirectory)
        return isDirectory.boolValue
            ? model.appendingPathComponent(Self.fileName)
            : model.deletingLastPathComponent().appendingPathComponent("." + model.lastPathComponent + Self.fileName)
    }

    private var inCacheDirectory: URL {
        let path = model.standardizedFileURL.resolvingSymlinksInPath().path
        return directory.appendingPathComponent(ModelIdentity.sha256Hex(Array(path.utf8)) + ".json")
    }
}
