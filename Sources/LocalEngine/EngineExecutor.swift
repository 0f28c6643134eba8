import Dispatch
import Generation

/// Runs engine work on one dedicated serial queue and hands results back to async callers.
/// The engine is synchronous and CPU-bound: on Swift's cooperative pool (one thread per core) it
/// would starve every other task, so it never runs there. One queue also serialises access to the
/// generator, which is not thread-safe.
public final class EngineExecutor: @unchecked Sendable {
    public let generator: TextGenerator
    private let queue = DispatchQueue(label: "stagebeam.engine")

    public init(generator: TextGenerator) {
        self.generator = generator
    }

    public func run<T: Sendable>(_ work: @escaping @Sendable (TextGenerator) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [generator] in
                continuation.resume(with: Result { try work(generator) })
            }
        }
    }
}
