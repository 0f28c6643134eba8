import ArgumentParser
import Foundation
import Search

extension SearchMethod: ExpressibleByArgument {}
extension TournamentKind: ExpressibleByArgument {}
extension VerdictMode: ExpressibleByArgument {}

/// The search options shared by `run`, `submit` and `batch`.
struct SearchOptions: ParsableArguments {
    @Option(help: "stage (default), best-of-n, sentence or greedy.")
    var method: SearchMethod = .stage

    @Option(help: "Candidates per stage (N): 1 to \(SearchConfig.maxBeam).")
    var beam = 2

    func validate() throws {
        if !(1...SearchConfig.maxBeam).contains(beam) {
            throw ValidationError("--beam must be between 1 and \(SearchConfig.maxBeam), got \(beam)")
        }
    }

    @OptionGroup var tuning: SearchTuningOptions

    var config: SearchConfig { tuning.config(method: method, beam: beam) }
    var seed: UInt64 { tuning.seed }
    var judgeTemplates: String? { tuning.judgeTemplates }
    func templates() throws -> JudgeTemplates { try tuning.templates() }
}

/// Every search option but the method and the beam: `eval` takes lists of those instead.
struct SearchTuningOptions: ParsableArguments {
    @Option(help: "random (the reference's) or bracket (a round's matches run concurrently).")
    var tournament: TournamentKind = .random

    @Option(name: .customLong("judge-mode"), help: "logprob (one forward pass) or generate (a parsed written verdict).")
    var judgeMode: VerdictMode = .logprob

    @Flag(name: .customLong("judge-both-orders"), help: "Judge every pair as A/B and B/A to cancel position bias.")
    var judgeBothOrders = false

    @Option(name: .customLong("judge-templates"), help: "A judge-templates JSON file replacing the built-in one.")
    var judgeTemplates: String?

    @Option(name: .customLong("max-stage-tokens"), help: "Token budget per stage.")
    var maxStageTokens = 256

    @Option(name: .customLong("judge-max-tokens"), help: "Token budget of a generate-mode verdict.")
    var judgeMaxTokens = SearchConfig().judgeMaxTokens

    @Option(help: "Candidate sampling temperature (the reference uses 0.6).")
    var temperature: Double = 0.6

    @Option(name: .customLong("top-p"), help: "Candidate nucleus threshold (the reference uses 0.9).")
    var topP: Double = 0.9

    @Option(
        name: .customLong("judge-temperature"),
        help: "Sampling temperature of generate-mode verdicts (the reference's 0.6; 0 = greedy), with --top-p.")
    var judgeTemperature: Double = Sampling.reference.temperature

    @Option(help: "Job seed: fixes every candidate's and every judge call's sampler seed.")
    var seed: UInt64 = 0

    @Flag(name: .customLong("no-force-tags"), help: "Let the model write each stage's opening tag itself.")
    var noForceTags = false

    func config(method: SearchMethod, beam: Int) -> SearchConfig {
        var config = SearchConfig()
        config.method = method
        config.beam = beam
        config.tournament = tournament
        config.judgeMode = judgeMode
        config.judgeBothOrders = judgeBothOrders
        config.maxStageTokens = maxStageTokens
        config.judgeMaxTokens = judgeMaxTokens
        config.sampling = Sampling(temperature: temperature, topP: topP)
        config.judgeSampling = Sampling(temperature: judgeTemperature, topP: topP)
        config.seed = seed
        config.forceTags = !noForceTags
        return config
    }

    func templates() throws -> JudgeTemplates {
        guard let judgeTemplates else { return .builtIn }
        return try JudgeTemplates(contentsOf: URL(fileURLWithPath: judgeTemplates))
    }
}
