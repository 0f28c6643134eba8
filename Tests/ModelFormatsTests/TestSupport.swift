import Foundation
import Testing

@testable import ModelFormats

/// `Tests/Fixtures/models`, found from this file's path (no SwiftPM resources needed).
let modelFixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/models")

/// A fresh, empty directory that is removed when the returned object is released.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("modelformats-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: url.appendingPathComponent(name))
    }

    func write(_ name: String, _ data: Data) throws {
        try data.write(to: url.appendingPathComponent(name))
    }
}

/// Runs `body`, expecting a ModelFormatError with `code` whose message contains every one of `fragments`.
func expectError(
    _ code: ModelFormatError.Code, mentioning fragments: [String],
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected a \(code) error, got success", sourceLocation: sourceLocation)
    } catch let error as ModelFormatError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "'\(fragment)' not in: \(error.message)", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected a ModelFormatError, got \(error)", sourceLocation: sourceLocation)
    }
}
