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
            (#"{"search": {"method": "beam"}}"#, ["stagebeam.json", "search.method"]),
            (#"{"methods": {"beam": {"beam": 2}}}"#, ["stagebeam.json", "'beam' is not a search method"]),
            (#"{"search": {"search_stages": ["answer"]}}"#, ["stagebeam.json", "search_stages"])
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
        #expect(config.searchStages == [.reasoning] && config.sampling.temperature == 1.2)
        var bestOfN = SearchSettings()
        bestOfN.method = .bestOfN
        #expect(recommendations.config(choices: bestOfN).sampling.temperature == 0.6)
        var swires = SearchSettings()
        swires.method = .swires
        let swiresConfig = recommendations.config(choices: swires)
        #expect(swiresConfig.candidates == 2 && swiresConfig.keep == 2 && swiresConfig.sampling.temperature == 0.6)
    }

    /// `methods` lays one method's settings over `search` when that method runs; the caller's still win.
    @Test func aMethodsOwnSettingsApplyToItAlone() throws {
        let directory = try modelDirectory(
            #"{"search": {"beam": 4, "temperature": 0.6}, "methods": {"stage": {"temperature": 1.2, "search_stages": ["reasoning"]}}}"#)
        defer { try? FileManager.default.removeItem(at: directory) }
        let recommendations = try ModelRecommendations(model: directory)
        let stage = recommendations.config(choices: SearchSettings())
        #expect(stage.method == .stage && stage.beam == 4 && stage.sampling.temperature == 1.2 && stage.searchStages == [.reasoning])
        var choices = SearchSettings()
        choices.method = .sentence
        let sentence = recommendations.config(choices: choices)
        #expect(sentence.beam == 4 && sentence.sampling.temperature == 0.6 && sentence.searchStages == Stage.allCases)
        choices.method = .stage
        choices.temperature = 0.8
        #expect(recommendations.config(choices: choices).sampling.temperature == 0.8)
    }
}
