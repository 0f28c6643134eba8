import Foundation
import Search
import Testing

/// A model's stagebeam.json: its settings fill what a caller leaves unset, and nothing the caller set.
@Suite struct ModelRecommendationsTests {
    private func modelDirectory(_ json: String?) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recommendations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if let json { try Data(json.utf8).write(to: directory.appendingPathComponent(ModelRecommendations.fileName)) }
        return directory
    }

    @Test func unsetChoicesTakeTheModelsSettingsAndSetOnesWin() throws {
        let directory = try modelDirectory(
            #"{"requires_image": true, "search": {"beam": 4, "judge_mode": "generate", "judge_temperature": 0, "top_p": 0.8}}"#)
        defer { try? FileManager.default.removeItem(at: directory) }
        let recommendations = try ModelRecommendations(model: directory)
        #expect(recommendations.requiresImage)

        let unset = recommendations.config(choices: SearchSettings())
        #expect(unset.beam == 4)
        #expect(unset.judgeMode == .generate)
        #expect(unset.judgeSampling.temperature == 0)
        #expect(unset.sampling.topP == 0.8 && unset.judgeSampling.topP == 0.8)
        #expect(unset.tournament == SearchConfig().tournament) // not in the file: the search's default
        #expect(unset.sampling.temperature == SearchConfig().sampling.temperature)

        var choices = SearchSettings()
        choices.beam = 2
        choices.judgeMode = .logprob
        let chosen = recommendations.config(choices: choices)
        #expect(chosen.beam == 2)
        #expect(chosen.judgeMode == .logprob)
        #expect(chosen.judgeSampling.temperature == 0)
    }

    @Test func aModelWithoutTheFileHasNoRecommendations() throws {
        let directory = try modelDirectory(nil)
        defer { try? FileManager.default.removeItem(at: directory) }
        let recommendations = try ModelRecommendations(model: directory)
        #expect(!recommendations.requiresImage)
        #expect(recommendations.config(choices: SearchSettings()) == SearchConfig())
    }

    @Test func aBadFileIsNamedWithItsProblem() throws {
        for (json, words) in [
            ("{not json", ["stagebeam.json", "not valid JSON"]),
            (#"{"search": {"beam": "four"}}"#, ["stagebeam.json", "search.beam"]),
            (#"{"search": {"method": "beam"}}"#, ["stagebeam.json", "search.method"])
        ] {
            let directory = try modelDirectory(json)
            defer { try? FileManager.default.removeItem(at: directory) }
            let error = #expect(throws: SearchError.self) { try ModelRecommendations(model: directory) }
            for word in words { #expect(error?.message.contains(word) == true, "\(error?.message ?? "") lacks \(word)") }
        }
    }

    /// The built-in model ships the settings its README figures were measured with (`make eval`).
    @Test func theBuiltInModelRecommendsWhatItsEvaluationMeasured() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let recommendations = try ModelRecommendations(model: root.appendingPathComponent("models/stagebeam-shapes"))
        #expect(recommendations.requiresImage)
        let config = recommendations.config(choices: SearchSettings())
        #expect(config.method == .stage && config.beam == 4 && config.judgeMode == .generate)
        #expect(config.judgeSampling.temperature == 0)
    }
}
