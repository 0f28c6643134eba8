import ClusterTestSupport
import Foundation
import Testing

@testable import Jobs

/// Where the built-in model is found: $STAGEBEAM_MODEL, the current directory, then up from the executable.
struct BuiltInModelTests {
    /// A checkout at `root/repo` with the model and dataset, an executable in its build folder, and an
    /// unrelated current directory `root/elsewhere`.
    static func layout(_ scratch: Scratch) throws -> (repo: URL, elsewhere: URL, executable: URL) {
        let fm = FileManager.default
        let repo = scratch.url.appendingPathComponent("repo")
        let elsewhere = scratch.url.appendingPathComponent("elsewhere")
        let build = repo.appendingPathComponent(".build/x86_64-unknown-linux-gnu/release")
        for directory in [
            repo.appendingPathComponent(BuiltInModel.modelPath), repo.appendingPathComponent("datasets/shapes"),
            elsewhere, build
        ] {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        try Data("{}".utf8).write(to: repo.appendingPathComponent(BuiltInModel.modelPath + "/config.json"))
        try Data().write(to: repo.appendingPathComponent(BuiltInModel.datasetPath))
        try Data().write(to: build.appendingPathComponent("stagebeam"))
        // `.build/release` is a link, as SwiftPM makes it.
        try fm.createSymbolicLink(at: repo.appendingPathComponent(".build/release"), withDestinationURL: build)
        return (repo, elsewhere, repo.appendingPathComponent(".build/release/stagebeam"))
    }

    @Test func walksUpFromTheExecutable() throws {
        let scratch = try Scratch()
        let (repo, elsewhere, executable) = try Self.layout(scratch)
        let lookup = BuiltInModel(environment: [:], currentDirectory: elsewhere, executable: executable)
        #expect(
            try lookup.directory().resolvingSymlinksInPath()
                == repo.appendingPathComponent(BuiltInModel.modelPath).resolvingSymlinksInPath())
        #expect(
            try lookup.dataset().resolvingSymlinksInPath()
                == repo.appendingPathComponent(BuiltInModel.datasetPath).resolvingSymlinksInPath())
    }

    @Test func theEnvironmentThenTheCurrentDirectoryComeFirst() throws {
        let scratch = try Scratch()
        let (repo, elsewhere, _) = try Self.layout(scratch)
        let here = BuiltInModel(environment: [:], currentDirectory: repo, executable: nil)
        #expect(try here.directory().path == repo.appendingPathComponent(BuiltInModel.modelPath).path)
        let chosen = BuiltInModel(environment: ["STAGEBEAM_MODEL": "/models/mine"], currentDirectory: repo, executable: nil)
        #expect(try chosen.directory().path == "/models/mine")
        // A directory without config.json (a model still being written) does not count.
        try FileManager.default.createDirectory(
            at: elsewhere.appendingPathComponent(BuiltInModel.modelPath), withIntermediateDirectories: true)
        #expect(throws: JobsError.self) { try BuiltInModel(environment: [:], currentDirectory: elsewhere, executable: nil).directory() }
    }

    @Test func notFoundNamesThePlacesTriedAndTheOption() throws {
        let scratch = try Scratch()
        let lookup = BuiltInModel(
            environment: [:], currentDirectory: scratch.url, executable: scratch.url.appendingPathComponent("bin/stagebeam"))
        do {
            _ = try lookup.directory()
            Issue.record("found a model in an empty directory")
        } catch let error as JobsError {
            #expect(error.message.contains(scratch.url.appendingPathComponent("models/stagebeam-shapes").path))
            #expect(error.message.contains(scratch.url.appendingPathComponent("bin/models/stagebeam-shapes").path))
            #expect(error.message.hasSuffix("pass --model DIR (or set STAGEBEAM_MODEL)"))
        }
    }
}

/// The built-in model learned only questions about images: a question without one is refused with the
/// reason, instead of being answered with nonsense.
@Test func aQuestionWithoutAnImageIsRefusedByTheBuiltInModel() throws {
    let scratch = try Scratch()
    let (status, _, stderr) = try runStagebeam(["run", "--question", "What is 2+2?"], in: scratch, name: "run")
    #expect(status != 0)
    #expect(stderr.contains("answers questions about an image only"), "\(stderr)")
    #expect(stderr.contains("--image"), "\(stderr)")
}
