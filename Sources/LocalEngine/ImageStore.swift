import Foundation
import Generation

/// Image bytes by content hash, as requests name them (`imageRef`). A worker fills it from the
/// wire (each image crosses once per job), `stagebeam run` from the command line.
public final class ImageStore: @unchecked Sendable {
    private var images: [String: Data] = [:]
    private let lock = NSLock()

    public init() {}

    public func put(_ data: Data, hash: String) {
        lock.withLock { images[hash] = data }
    }

    public func contains(_ hash: String) -> Bool {
        lock.withLock { images[hash] != nil }
    }

    /// The images a request refers to (none or one).
    func images(for reference: String?) throws -> [PromptImage] {
        guard let reference else { return [] }
        guard let data = lock.withLock({ images[reference] }) else {
            throw LocalEngineError("image \(reference) is not available here (send its bytes first)")
        }
        return [PromptImage(hash: reference, data: data)]
    }
}
