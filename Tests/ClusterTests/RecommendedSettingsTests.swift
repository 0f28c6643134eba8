import ClusterTestSupport
import Foundation
import Testing

/// Workers announce their model's recommended search settings (its stagebeam.json); the coordinator
/// fills the fields a job leaves unset from them, and refuses a text-only job for a model that only
/// learned questions about images.
@Suite(.serialized) struct RecommendedSettingsTests {
    static let builtIn = Repo.root.appendingPathComponent("models/stagebeam-shapes").path
    static let image = Repo.root.appendingPathComponent("examples/count.png").path

    @Test func unsetJobFieldsTakeTheWorkersRecommendations() throws {
        let scratch = try Scratch()
        let cluster = try LocalCluster(scratch: scratch)
        try cluster.addWorker("shapes", maxBatch: 4, model: Self.builtIn, extra: ["--threads", "1"])

        let (status, _, stderr) = try runStagebeam(
            ["submit", "--coordinator", cluster.endpoint, "--question", "How many red objects are there?"], in: scratch,
            name: "text-only")
        #expect(status != 0)
        #expect(stderr.contains("answers questions about an image only"), "\(stderr)")

        // Greedy keeps the job short; the settings it reports are the filled job's.
        let (ok, out, err) = try runStagebeam(
            [
                "submit", "--coordinator", cluster.endpoint, "--image", Self.image, "--question", "How many red objects are there?",
                "--method", "greedy", "--json"
            ], in: scratch, name: "filled")
        #expect(ok == 0, "\(err)")
        let settings = try #require(try parseJSON(out)["settings"] as? [String: Any])
        #expect(settings["method"] as? String == "greedy") // the job's own choice
        #expect(settings["beam"] as? Int == 4) // models/stagebeam-shapes/stagebeam.json
        #expect(settings["judge_mode"] as? String == "generate")
        #expect(settings["judge_temperature"] as? Double == 0)
        #expect(settings["max_stage_tokens"] as? Int == 256)
    }
}
