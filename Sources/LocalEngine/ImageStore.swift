import Foundation
import Generation
import Synchronization

/// Image bytes by content hash, as requests name them (`imageRef`). A worker fills it from the
/// wire (each image crosses once per job), `stagebeam run` from the command line. Entries are
/// counted: each `put` is matched by a `release` when its user is done (an in-process batch holds
/// only the images of the items in flight).
public final class ImageStore: Sendable {
    private let images = Mutex<[String: (data: Data, users: Int)]>([:])

    public init() {}

    public func put(_ data: Data, hash: String) {
        images.withLock { $0[hash] = (data, ($0[hash]?.users ?? 0) + 1) }
    }

    /// Ends one `put`'s use of the image; the last one removes it.
    public func release(_ hash: String) {
        images.withLock { images in
            guard let entry = images[hash] else { return }
            images[hash] = entry.users > 1 ? (entry.data, entry.users - 1) : nil
        }
    }

    /// The images a request refers to (none or one).
    func images(for reference: String?) throws -> [PromptImage] {
        guard let reference else { return [] }
        guard let data = images.withLock({ $0[reference]?.data }) else {
            throw LocalEngineError("image \(reference) is not available here (send its bytes first)")
        }
        return [PromptImage(hash: reference, data: data)]
    }
}
