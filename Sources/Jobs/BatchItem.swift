import Foundation

/// One question of a batch, whichever input form it came from.
public struct BatchItem: Sendable, Equatable {
    /// Unique within the input; keys the output line and, with `--seed`, the item's seed.
    public var id: String
    public var question: String
    public var image: ItemImage?
    /// The expected answer when the input has one (VLMEvalKit's `answer` column); copied to the output.
    public var reference: String?
    /// Where the item starts in the input (1-based line, or record number of a JSON array).
    public var line: Int

    public init(id: String, question: String, image: ItemImage? = nil, reference: String? = nil, line: Int) {
        self.id = id
        self.question = question
        self.image = image
        self.reference = reference
        self.line = line
    }
}

/// An item's image: a file (read when the item runs, so a large batch does not hold every image in
/// memory) or bytes decoded from the input itself (VLMEvalKit's base64 column).
public enum ItemImage: Sendable, Equatable {
    case file(URL)
    case bytes(Data)

    public func load() throws -> Data {
        switch self {
        case .bytes(let data):
            return data
        case .file(let url):
            do {
                return try Data(contentsOf: url, options: .alwaysMapped)
            } catch {
                throw JobsError(.io, "cannot read image \(url.path): \(error.localizedDescription)")
            }
        }
    }
}

/// A line (or record) of the input that cannot become an item, and why. The batch goes on without it.
public struct InputProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { "line \(line): \(reason)" }
}
