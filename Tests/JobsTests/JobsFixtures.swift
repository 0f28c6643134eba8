import ClusterTestSupport
import Foundation

/// Paths of the jobs fixtures (`scripts/fixtures/make_jobs_fixtures.py` writes them).
enum JobsFixtures {
    static let directory = Repo.root.appendingPathComponent("Tests/Fixtures/jobs")
    static let images = Repo.root.appendingPathComponent("Tests/Fixtures/vision/images")
    static let llava = Repo.root.appendingPathComponent("Tests/Fixtures/vision/llava-clip-llama").path
    static let template = directory.appendingPathComponent("llava-template.jinja").path

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }
}

/// The JSON lines of a batch output file, by id (failing on a line that does not parse).
func outputLines(_ path: String) throws -> [[String: Any]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return try text.split(separator: "\n").map { try parseJSON(String($0)) }
}
