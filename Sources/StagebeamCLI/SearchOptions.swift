import ArgumentParser
import Foundation
import Search

extension SearchMethod: ExpressibleByArgument {}
extension TournamentKind: ExpressibleByArgument {}
extension VerdictMode: ExpressibleByArgument {}

/// Stage names separated by commas, e.g. `reasoning` or `caption,reasoning`.
struct StageList: ExpressibleByArgument {
    var stages: [Stage]

    init?(argument: String) {
        var stages: [Stage] = []
        for name in argument.split(separator: ",") {
            guard let stage = Stage(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased()) else { return nil }
            stages.append(stage)
        }
        guard !stages.isEmpty else { return nil }
        self.stages = stages
    }

    static var defaultCompletionKind: CompletionKind { .list(Stage.allCases.map(\.rawValue)) }
}

/// Where an unset search option's value comes from, for every option's help.
let searchDefaultsNote = "default: the model's recommended setting (its stagebeam.json), else"

/// The search options shared by `run`, `submit` and `batch`. Every option left unset takes the model's
/// recommended setting (`ModelRecommendations`), else the search's own default.
struct SearchOptions: ParsableArguments {
    @Option(help: "stage, best-of-n, sentence, greedy, stage-beam or swires (\(searchDefaultsNote) stage).")
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

    @Option(
        name: .customLong("search-stages"),
        help: ArgumentHelp(
            "stage: the stages that get N candidates and a tournament, comma-separated; the others are written greedily (\(searchDefaultsNote) all four).",
            valueName: "summary,caption,reasoning,conclusion"))
    var searchStages: StageList?

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

    @Option(help: "stage-beam, swires: candidates per stage, M (\(searchDefaultsNote) \(SearchConfig().candidates)).")
    var candidates: Int?

    @Option(help: "stage-beam, swires: survivors kept per stage, N, a divisor of M (\(searchDefaultsNote) \(SearchConfig().keep)).")
    var keep: Int?

    @Option(help: "swires: retraces per question, C (\(searchDefaultsNote) \(SearchConfig().retraces)).")
    var retraces: Int?

    @Option(
        name: .customLong("reward-mean"),
        help: "swires: the reward mean of every stage, with --reward-std (default: the scorer's calibration in the model's stagebeam.json)."
    )
    var rewardMean: Double?

    @Option(name: .customLong("reward-std"), help: "swires: the reward standard deviation of every stage, with --reward-mean.")
    var rewardStd: Double?

    @Option(
        help: "swires: a stage passes when a candidate scores at least mean + z·std (\(searchDefaultsNote) \(RewardCalibration.defaultZ)).")
    var z: Double?

    /// The options given on the command line; unset ones stay nil.
    var choices: SearchSettings {
        var settings = SearchSettings()
        settings.tournament = tournament
        settings.judgeMode = judgeMode
        if judgeBothOrders { settings.judgeBothOrders = true }
        settings.searchStages = searchStages?.stages
        settings.maxStageTokens = maxStageTokens
        settings.judgeMaxTokens = judgeMaxTokens
        settings.temperature = temperature
        settings.topP = topP
        settings.judgeTemperature = judgeTemperature
        if noForceTags { settings.forceTags = false }
        settings.candidates = candidates
        settings.keep = keep
        settings.retraces = retraces
        settings.rewardMean = rewardMean
        settings.rewardStd = rewardStd
        settings.rewardZ = z
        return settings
    }

    func templates() throws -> JudgeTemplates {
        guard let judgeTemplates else { return .builtIn }
        return try JudgeTemplates(contentsOf: URL(fileURLWithPath: judgeTemplates))
    }
}

/// How the scored methods (stage-beam, swires) score candidates, for the commands that run them in process.
struct ScorerOptions: ParsableArguments {
    @Option(
        name: .customLong("reward-model"),
        help:
            "A reward model directory (LlamaForSequenceClassification or Qwen2ForSequenceClassification) that scores candidates instead of the policy model's self-reward; it reads the question as text."
    )
    var rewardModel: String?

    @Option(name: .customLong("reward-templates"), help: "A self-reward templates JSON file replacing the built-in wording.")
    var rewardTemplates: String?

    /// The scorer's name, as calibrations record it.
    var scorerName: String {
        rewardModel.map { "reward-model:" + URL(fileURLWithPath: $0).standardizedFileURL.lastPathComponent } ?? RewardCalibration.selfReward
    }

    func templates() throws -> RewardTemplates {
        guard let rewardTemplates else { return .builtIn }
        return try RewardTemplates(contentsOf: URL(fileURLWithPath: rewardTemplates))
    }

    func validate() throws {
        if rewardModel != nil, rewardTemplates != nil {
            throw ValidationError("--reward-templates words the self-reward; a --reward-model does not read it")
        }
    }
}

extension ModelRecommendations {
    /// The configuration of a search run with these recommendations and the command line's `choices`;
    /// a reward calibration applies when it was measured with `scorer`.
    func config(choices: SearchSettings, seed: UInt64, scorer: String = RewardCalibration.selfReward) -> SearchConfig {
        var config = config(choices: choices, scorer: scorer)
        config.seed = seed
        return config
    }
}
