import Foundation

/// A model fixture written by scripts/fixtures/make_model_fixtures.py: a tiny random checkpoint
/// and what transformers computed on it.
struct ReferenceFixture: Decodable {
    struct Prompt: Decodable {
        let text: String
        let input_ids: [Int]
        let logits: [[Float]]
        let greedy_ids: [Int]
    }
    let prompts: [Prompt]

    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/models")

    static func directory(_ name: String) -> URL { fixtures.appendingPathComponent(name) }

    static func load(_ name: String) throws -> ReferenceFixture {
        try JSONDecoder().decode(ReferenceFixture.self, from: Data(contentsOf: directory(name).appendingPathComponent("reference.json")))
    }

    /// Every fixture directory that has a reference.
    static var modelNames: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: fixtures.path)) ?? [])
            .filter {
                FileManager.default.fileExists(atPath: fixtures.appendingPathComponent($0).appendingPathComponent("reference.json").path)
            }
            .sorted()
    }
}
