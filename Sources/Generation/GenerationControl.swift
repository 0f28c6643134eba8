import Synchronization

/// Lets the caller of `TextGenerator.generate` stop a request's samples and read their text while
/// they are decoded, from any thread. Neither changes a sample's tokens: a stopped sample simply
/// ends early (its cache blocks freed at once), and text reports only read what was decoded.
public final class GenerationControl: Sendable {
    /// The text of samples with new text since the previous report, at most once per `textInterval`
    /// (and once more with the rest when decoding ends, unless stopped). nil: no reports.
    public let textInterval: Duration?
    let onText: (@Sendable ([SampleText]) -> Void)?
    private let stopped = Atomic<Bool>(false)

    public init(textInterval: Duration? = nil, onText: (@Sendable ([SampleText]) -> Void)? = nil) {
        self.textInterval = onText == nil ? nil : textInterval
        self.onText = onText
    }

    /// The request's samples stop at the next decode step (a request not started yet runs none).
    public func stop() { stopped.store(true, ordering: .relaxed) }

    public var isStopped: Bool { stopped.load(ordering: .relaxed) }
}

/// New text of one sample since its previous report.
public struct SampleText: Sendable, Equatable {
    /// The sample's index in its request (its seed's).
    public var index: Int
    /// Whole UTF-8 characters only: bytes of a character not complete yet wait for the next report.
    public var text: String
    /// Tokens the sample has generated so far.
    public var tokenCount: Int
}
