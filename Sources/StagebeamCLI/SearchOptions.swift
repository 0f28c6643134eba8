import ArgumentParser
import Foundation
import Search

extension SearchMethod: ExpressibleByArgument {}
extension TournamentKind: ExpressibleByArgument {}
extension VerdictMode: ExpressibleByArgument {}

/// Where an unset search option's value comes from, for every option's help.
let searchDefaultsNote = "default: the model's recommended setting (its stagebeam.json), else"

/// The search options shared by `run`, `submit` and `batch`. Every option left unset takes the model's
/// recommended setting (`ModelRecommendations`), else the search's own default.
struct SearchOptions: ParsableArguments {
    @Option(help: "stage, best-of-n, sentence or greedy (\(searchDefaultsNote) stage).")
    var method: SearchMethod?

    @Option(help: "Candidates per stage, N: 1 to \(SearchConfig.maxBeam) (\(searchDefaultsNote) \(SearchConfig().beam)).")
    var beam: Int?

    @OptionGroup var tuning: SearchTuningOptions

    /// What the command line chose, as a layer over the model's recommendations.
    var choices: SearchSettings {
        var settings = tuning.choices
        settings.method = method
        settings.beam = beam
        return settings
    }

    var seed: UInt64 { tuning.seed }
    var judgeTemplates: String? { tuning.judgeTemplates }
    func templates() throws -> JudgeTemplates { try tuning.templates() }

    func validate() throws {
        // The same range for run, submit and batch: what the engine decodes in one request.
        if let beam, !(1...SearchConfig.maxBeam).contains(beam) {
            throw ValidationError("--beam must be between 1 and \(SearchConfig.maxBeam), got \(beam)")
        }
    }
}

/// Every search option but the method and the beam: `eval` takes lists of those instead.
struct SearchTuningOptions: ParsableArguments {
    @Option(help: "random (the reference's) or bracket: a round's matches run concurrently (\(searchDefaultsNote) random).")
    var tournament: TournamentKind?

    @Option(
        name: .customLong("judge-mode"),
        help: "logprob: one forward pass; generate: a parsed written verdict (\(searchDefaultsNote) logprob).")
    var judgeMode: VerdictMode?

    @Flag(name: .customLong("judge-both-orders"), help: "Judge every pair as A/B and B/A to cancel position bias.")
    var judgeBothOrders = false

    @Option(name: .customLong("judge-templates"), help: "A judge-templates JSON file replacing the built-in one.")
    var judgeTemplates: String?

    @Option(name: .customLong("max-stage-tokens"), help: "Token budget per stage (\(searchDefaultsNote) \(SearchConfig().maxStageTokens)).")
    var maxStageTokens: Int?

    @Option(
        name: .customLong("judge-max-tokens"),
        help: "Token budget of a generate-mode verdict (\(searchDefaultsNote) \(SearchConfig().judgeMaxTokens)).")
    var judgeMaxTokens: Int?

    @Option(help: "Candidate sampling temperature (\(searchDefaultsNote) the reference's 0.6).")
    var temperature: Double?

    @Option(name: .customLong("top-p"), help: "Nucleus threshold of candidates and verdicts (\(searchDefaultsNote) the reference's 0.9).")
    var topP: Double?

    @Option(
        name: .customLong("judge-temperature"),
        help: "Sampling temperature of generate-mode verdicts, 0 = greedy (\(searchDefaultsNote) the reference's 0.6).")
    var judgeTemperature: Double?

    @Option(help: "Job seed: fixes every candidate's and every judge call's sampler seed.")
    var seed: UInt64 = 0

    @Flag(name: .customLong("no-force-tags"), help: "Let the model write each stage's opening tag itself.")
    var noForceTags = false

    /// The options given on the command line; unset ones stay nil.
    var choices: SearchSettings {
        var settings = SearchSettings()
        settings.tournament = tournament
        settings.judgeMode = judgeMode
        if judgeBothOrders { settings.judgeBothOrders = true }
        settings.maxStageTokens = maxStageTokens
        settings.judgeMaxTokens = judgeMaxTokens
        settings.temperature = temperature
        settings.topP = topP
        settings.judgeTemperature = judgeTemperature
        if noForceTags { settings.forceTags = false }
        return settings
    }

    func templates() throws -> JudgeTemplates {
        guard let judgeTemplates else { return .builtIn }
        return try JudgeTemplates(contentsOf: URL(fileURLWithPath: judgeTemplates))
    }
}

extension ModelRecommendations {
    /// The configuration of a search run with these recommendations and the command line's `choices`.
    func config(choices: SearchSettings, seed: UInt64) -> SearchConfig {
        var config = config(choices: choices)
        config.seed = seed
        return config
    }
}
